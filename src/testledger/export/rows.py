"""The stored results of a run, streamed with everything an exporter writes: each pipeline case that
groups sub-results comes right before them, flagged as a group."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from testledger.db.tables import Case, CaseResult
from testledger.lifecycle import is_group


@dataclass(slots=True)
class ExportRow:
    idx: int
    parent_idx: int | None
    key: str | None
    name: str
    suite: str
    classname: str
    status: str
    duration_ms: float | None
    message: str | None
    error_type: str | None
    stack_trace: str | None
    stdout: str | None
    stderr: str | None
    properties: dict[str, str] | None
    attempts: list[dict[str, Any]] | None
    flaky: bool
    attachments: list[str] | None
    #: A pipeline case whose tests are its sub-results (they follow it): not a test itself.
    group: bool = False


def export_rows(db: Session, *, run_id: uuid.UUID, batch: int = 2000) -> Iterator[ExportRow]:
    """Results in index order; with sub-results, each group is followed by its own tests."""
    bad = case((CaseResult.status.in_(("failed", "error")), 1), else_=0)
    # parent index -> whether any of its tests failed (see `lifecycle.is_group`)
    parents: dict[int, bool] = {
        int(parent): bool(any_bad) for parent, any_bad in db.execute(
            select(CaseResult.parent_idx, func.max(bad))
            .where(CaseResult.run_id == run_id, CaseResult.parent_idx.is_not(None))
            .group_by(CaseResult.parent_idx)
        )
    }
    query = (
        select(
            CaseResult.idx, CaseResult.parent_idx, Case.key, Case.name, Case.suite, Case.classname,
            CaseResult.status, CaseResult.duration_ms, CaseResult.message, CaseResult.error_type,
            CaseResult.stack_trace, CaseResult.stdout, CaseResult.stderr, CaseResult.properties,
            CaseResult.attempts, CaseResult.flaky, CaseResult.attachments,
        )
        .join(Case, Case.id == CaseResult.case_id)
        .where(CaseResult.run_id == run_id)
        .execution_options(yield_per=batch)
    )
    if parents:  # only runs of pipelines have sub-results, and they are small: a sort is cheap there
        query = query.order_by(
            func.coalesce(CaseResult.parent_idx, CaseResult.idx), CaseResult.parent_idx.is_not(None), CaseResult.idx
        )
    else:  # large ingested runs stream in the order of the (run_id, idx) index
        query = query.order_by(CaseResult.idx)
    # Rows unpacked as tuples: attribute access on SQLAlchemy rows cost more than the writing.
    for (idx, parent_idx, key, name, suite, classname, status, duration_ms, message, error_type, stack_trace,
         stdout, stderr, properties, attempts, flaky, attachments) in db.execute(query):
        yield ExportRow(
            idx=idx, parent_idx=parent_idx, key=key, name=name, suite=suite or "", classname=classname or "",
            status=status, duration_ms=duration_ms, message=message, error_type=error_type,
            stack_trace=stack_trace, stdout=stdout, stderr=stderr, properties=properties, attempts=attempts,
            flaky=bool(flaky), attachments=attachments,
            group=bool(parents) and is_group(status, has_tests=idx in parents, a_test_failed=parents.get(idx, False)),
        )
