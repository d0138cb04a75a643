"""Results reported one by one into an open run (the pytest plugin, locally or over HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.db import records, run_sql
from testledger.db.rows import NewCase, NewResult
from testledger.schemas import TotalsOut

#: Most results one call appends (the plugin sends about every half second, at most 500 at a time).
MAX_RESULTS = 1000
#: Longest text field of a result accepted over HTTP; the store keeps at most `max_output_bytes` of it.
MAX_TEXT = 1024 * 1024
#: Longest class or test name (a parametrised test's id can be long).
MAX_NAME = 10_000


class AttemptIn(BaseModel):
    """One earlier try of a test that was run again."""

    status: Literal["passed", "failed", "error", "skipped"]
    duration_ms: float | None = Field(default=None, ge=0)
    message: str | None = Field(default=None, max_length=MAX_TEXT)
    error_type: str | None = Field(default=None, max_length=MAX_TEXT)


class ResultIn(BaseModel):
    """One finished test as a reporter (the pytest plugin) describes it."""

    suite: str = Field(max_length=255, description="The reporter, e.g. `pytest`: part of the test's identity.")
    classname: str = Field(max_length=MAX_NAME)
    name: str = Field(min_length=1, max_length=MAX_NAME)
    status: Literal["passed", "failed", "error", "skipped"]
    duration_ms: float = Field(default=0.0, ge=0)
    message: str | None = Field(default=None, max_length=MAX_TEXT)
    error_type: str | None = Field(default=None, max_length=MAX_TEXT)
    stack_trace: str | None = Field(default=None, max_length=MAX_TEXT)
    stdout: str | None = Field(default=None, max_length=MAX_TEXT)
    stderr: str | None = Field(default=None, max_length=MAX_TEXT)
    attempts: list[AttemptIn] | None = Field(default=None, max_length=50, description="Earlier tries, oldest first.")
    worker: str | None = Field(default=None, max_length=255)
    started_at: datetime | None = None
    completed_at: datetime | None = None


class AppendedOut(BaseModel):
    """What an append did: how many results the run gained, and its counters now."""

    execution_id: str
    appended: int
    status: str
    totals: TotalsOut


def new_result(result: ResultIn, *, idx: int, workspace_id: int) -> NewResult:
    """The row a reported result becomes: its identity from suite, class and name; a test that passed
    only on a retry is flaky; its failure category derived as for every other result."""
    from testledger.attempts import attempt_dict
    from testledger.caseid import case_id, reported_identity
    from testledger.failures import categorise

    identity = reported_identity(result.suite, result.classname, result.name)
    attempts = None
    if result.attempts:
        last = AttemptIn(status=result.status, duration_ms=result.duration_ms, message=result.message,
                         error_type=result.error_type)
        attempts = [attempt_dict(a) for a in (*result.attempts, last)]
    return NewResult(
        idx=idx, case=NewCase(id=case_id(workspace_id, identity), identity=identity, kind="reported",
                              name=result.name, suite=result.suite, classname=result.classname),
        status=result.status, duration_ms=result.duration_ms, message=result.message, error_type=result.error_type,
        stack_trace=result.stack_trace, stdout=result.stdout, stderr=result.stderr, attempts=attempts,
        flaky=bool(attempts) and result.status == lifecycle.PASSED,
        failure_category=categorise(result.status, message=result.message, error_type=result.error_type,
                                    stack_trace=result.stack_trace),
        worker=result.worker, started_at=result.started_at, completed_at=result.completed_at,
    )


def append_results(db: Session, *, workspace: str, key: str, results: Sequence[ResultIn]) -> AppendedOut:
    """Add `results` to the open run `key`, numbered after its last result; a pending run starts."""
    from testledger.errors import Invalid

    if len(results) > MAX_RESULTS:
        raise Invalid(f"at most {MAX_RESULTS} results per call, got {len(results)}: send them in batches")
    run = records.find_run(db, workspace=workspace, key=key, for_update=True)
    if run.status == lifecycle.PENDING:
        records.transition(db, workspace=workspace, key=key, to=lifecycle.RUNNING)
    first = run_sql.next_result_index(db, run_id=run.id)
    rows = [new_result(r, idx=first + n, workspace_id=run.workspace_id) for n, r in enumerate(results)]
    if rows:
        records.record_results(db, run=run, results=rows)
    elif run.status in lifecycle.TERMINAL:
        from testledger.errors import Conflict

        raise Conflict(f"run '{key}' is already {run.status}; results cannot be added")
    t = records.totals_of(run)
    return AppendedOut(execution_id=run.key, appended=len(rows), status=run.status.upper(),
                       totals=TotalsOut(tests=t.tests, passed=t.passed, failed=t.failed, errors=t.errors,
                                        skipped=t.skipped, flaky=t.flaky))
