"""The stored results of a run, streamed in index order with everything an exporter writes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger.db.tables import Case, CaseResult


@dataclass(slots=True)
class ExportRow:
    idx: int
    parent_idx: int | None
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


def export_rows(db: Session, *, run_id: uuid.UUID, batch: int = 2000) -> Iterator[ExportRow]:
    query = (
        select(
            CaseResult.idx, CaseResult.parent_idx, Case.name, Case.suite, Case.classname, CaseResult.status,
            CaseResult.duration_ms, CaseResult.message, CaseResult.error_type, CaseResult.stack_trace,
            CaseResult.stdout, CaseResult.stderr, CaseResult.properties, CaseResult.attempts, CaseResult.flaky,
            CaseResult.attachments,
        )
        .join(Case, Case.id == CaseResult.case_id)
        .where(CaseResult.run_id == run_id)
        .order_by(CaseResult.idx)
        .execution_options(yield_per=batch)
    )
    for r in db.execute(query):
        yield ExportRow(
            idx=r.idx, parent_idx=r.parent_idx, name=r.name, suite=r.suite or "", classname=r.classname or "",
            status=r.status, duration_ms=r.duration_ms, message=r.message, error_type=r.error_type,
            stack_trace=r.stack_trace, stdout=r.stdout, stderr=r.stderr, properties=r.properties,
            attempts=r.attempts, flaky=bool(r.flaky), attachments=r.attachments,
        )
