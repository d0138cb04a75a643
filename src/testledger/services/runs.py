"""Runs: open and finish by hand, fetch with bounded, paged cases, list with filters and keyset pages."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from testledger import keys, lifecycle
from testledger.attempts import attempt_out
from testledger.db import records
from testledger.db.tables import Case, CaseResult, Pipeline, Run, Workspace
from testledger.errors import Conflict, Invalid, NotFound
from testledger.provenance import Provenance
from testledger.schemas import CaseDetailOut, CaseOut, ExecutionOut, RunPage, TotalsOut

MAX_PAGE = 500
#: Most cases one page of `get_execution` lists.
MAX_CASE_PAGE = 10_000
#: Case indexes are 32-bit in the store.
MAX_CASE_INDEX = 2**31 - 1


def open_run(
    db: Session,
    *,
    workspace: str,
    pipeline_key: str,
    environment: str,
    allowed_environments: Sequence[str],
    provenance: Provenance,
    labels: dict[str, str] | None = None,
) -> ExecutionOut:
    """A run opened by hand (`runs start`): running at once, closed by `finish_run`; its pipeline is
    created when new, for CI jobs that bracket their tests."""
    run = records.create_run(
        db, workspace=workspace, actor=provenance.actor, environment=environment,
        allowed_environments=allowed_environments, pipeline_key=pipeline_key, trigger=provenance.trigger,
        revision=provenance.revision, branch=provenance.branch, build_url=provenance.build_url, labels=labels,
        executor="cli", started=True,
    )
    return get_execution(db, workspace=workspace, key=run.key, with_cases=False)


def finish_run(
    db: Session, *, workspace: str, key: str, status: str = lifecycle.COMPLETED, result: str | None = None,
    force: bool = False, actor: str | None = None,
) -> ExecutionOut:
    """End an open run: completed (result derived from its cases unless given), cancelled or timeout.

    A `result` other than the derived one is noted on the run; one milder than its cases give
    (passed over failed cases) needs `force`.
    """
    records.transition(db, workspace=workspace, key=key, to=status.lower(), result=result and result.lower(),
                       force=force, actor=actor)
    return get_execution(db, workspace=workspace, key=key, with_cases=False)


# -- reading -----------------------------------------------------------------------------------


#: `runs show` lists at most this many cases; a larger run lists the ones that did not pass first.
SHOW_LIMIT = 200
#: Statuses `show_execution` lists first when a run has too many cases to list them all.
_SHOWN_FIRST = (*lifecycle.NOT_PASSED, lifecycle.SKIPPED)


def get_execution(
    db: Session,
    *,
    workspace: str,
    key: str,
    with_cases: bool = True,
    statuses: Sequence[str] | None = None,
    case_limit: int | None = None,
    cursor: str | None = None,
) -> ExecutionOut:
    """A run in the seed's execution shape, with its cases in index order (only those with one of
    `statuses`, at most `case_limit` of them, from the `cursor` of a previous page, when given)."""
    execution = _find_execution(db, workspace=workspace, key=key)
    if with_cases:
        if case_limit is not None and not 1 <= case_limit <= MAX_CASE_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_CASE_PAGE}, got {case_limit}")
        first = _decode_case_cursor(cursor) if cursor else 0
        fetch = None if case_limit is None else case_limit + 1
        cases = list_cases(db, run_id=execution.id, statuses=statuses, limit=fetch, first_index=first)
        if case_limit is not None and len(cases) > case_limit:
            cases = cases[:case_limit]
            execution.next_cursor = str(cases[-1].index + 1)
        execution.cases = cases
    return execution


def show_execution(db: Session, *, workspace: str, key: str, limit: int = SHOW_LIMIT) -> ExecutionOut:
    """A run as `runs show` draws it, in bounded time and memory whatever its size: every case when it
    has at most `limit`, else the ones that did not pass (at most `limit`), with `cases_total` and a
    `next_cursor` that pages through all of its cases from the first."""
    execution = get_execution(db, workspace=workspace, key=key, case_limit=limit)
    if execution.next_cursor is None:
        execution.cases_total = len(execution.cases or [])
        return execution
    execution.cases = list_cases(db, run_id=execution.id, statuses=_SHOWN_FIRST, limit=limit)
    execution.cases_total = db.scalar(select(func.count()).where(CaseResult.run_id == execution.id)) or 0
    execution.next_cursor = "0"
    return execution


def _find_execution(db: Session, *, workspace: str, key: str) -> ExecutionOut:
    if keys.workspace_of(key) != workspace:
        raise NotFound(f"run '{key}' not found in workspace {workspace}")
    row = db.execute(_run_query().where(Run.key == key)).one_or_none()
    if row is None:
        raise NotFound(f"run '{key}' not found")
    return _execution(row)


def _decode_case_cursor(cursor: str) -> int:
    if not cursor.isdigit():
        raise Invalid(f"invalid cursor '{cursor}' (pass back the next cursor `runs show` printed, e.g. 200)")
    return int(cursor)


def list_cases(
    db: Session, *, run_id: uuid.UUID, statuses: Sequence[str] | None = None, limit: int | None = None,
    first_index: int = 0,
) -> list[CaseOut]:
    """A run's case results in index order, filtered and limited in SQL."""
    query = (
        select(
            CaseResult.idx, CaseResult.parent_idx, CaseResult.status, CaseResult.duration_ms,
            CaseResult.message, CaseResult.error_type, CaseResult.failure_category, CaseResult.attempt_count,
            CaseResult.flaky, CaseResult.worker, Case.key, Case.name, Case.suite, Case.classname,
        )
        .join(Case, Case.id == CaseResult.case_id)
        .where(CaseResult.run_id == run_id)
        .order_by(CaseResult.idx)
        .limit(limit)
    )
    if first_index:
        query = query.where(CaseResult.idx >= first_index)
    if statuses is not None:
        query = query.where(CaseResult.status.in_(statuses))
    return [
        CaseOut(
            index=r.idx, parent_index=r.parent_idx, case_key=r.key or display_key(r.classname, r.name),
            name=r.name, suite=r.suite or None, classname=r.classname or None, status=r.status.upper(),
            duration_ms=None if r.duration_ms is None else round(r.duration_ms),
            error=error_text(r.status, r.error_type, r.message), failure_category=r.failure_category,
            attempts=r.attempt_count, flaky=bool(r.flaky), runtime_id=r.worker,
        )
        for r in db.execute(query)
    ]


def get_case(db: Session, *, workspace: str, key: str, index: int) -> CaseDetailOut:
    """One case result with everything recorded about it: the seed's `get_execution_case`."""
    if not 0 <= index <= MAX_CASE_INDEX:
        raise Invalid(f"case index {index} is out of range (cases are numbered from 0; `runs show {key}` lists them)")
    run = records.find_run(db, workspace=workspace, key=key)
    row = db.execute(
        select(CaseResult, Case.key, Case.name, Case.suite, Case.classname)
        .join(Case, Case.id == CaseResult.case_id)
        .where(CaseResult.run_id == run.id, CaseResult.idx == index)
    ).one_or_none()
    if row is None:
        raise NotFound(f"run '{key}' has no case {index} (cases are numbered from 0; `runs show {key}` lists them)")
    r: CaseResult = row.CaseResult
    return CaseDetailOut(
        index=r.idx, parent_index=r.parent_idx, case_key=row.key or display_key(row.classname, row.name),
        name=row.name, suite=row.suite or None, classname=row.classname or None, status=r.status.upper(),
        duration_ms=None if r.duration_ms is None else round(r.duration_ms),
        error=error_text(r.status, r.error_type, r.message), failure_category=r.failure_category,
        attempts=r.attempt_count, flaky=bool(r.flaky), runtime_id=r.worker, message=r.message,
        error_type=r.error_type, stack_trace=r.stack_trace, stdout=r.stdout, stderr=r.stderr,
        properties=r.properties, started_at=r.started_at, completed_at=r.completed_at, log_ref=r.log_ref,
        attachments=r.attachments or [],
        attempt_details=[attempt_out(a) for a in r.attempts or []],
    )


def display_key(classname: str | None, name: str) -> str:
    return f"{classname}::{name}" if classname else name


def error_text(status: str, error_type: str | None, message: str | None) -> str | None:
    """`ErrorType: message` of a case that did not pass; for a skipped one, why it did not run."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    if status == lifecycle.PASSED or (status == lifecycle.SKIPPED and not first):
        return None
    if status == lifecycle.SKIPPED:
        return first
    if status == "passed" or (status == "skipped" and not first):
        return None
    if status == "skipped":
        return first
    if error_type and first:
        return first if first.startswith(error_type) else f"{error_type}: {first}"
    return error_type or first or status


def _run_query() -> Select[Run, str, str]:
    return (
        select(Run, Pipeline.key.label("pipeline_key"), Workspace.key.label("workspace"))
        .join(Workspace, Workspace.id == Run.workspace_id)
        .outerjoin(Pipeline, Pipeline.id == Run.test_definition_id)
    )


def _execution(row: Any) -> ExecutionOut:
    run: Run = row.Run
    return ExecutionOut(
        execution_id=run.key, id=run.id, workspace=row.workspace, status=run.status.upper(),
        result=run.result.upper() if run.result else None,
        test_run_status=lifecycle.view_status(run.status, run.result),
        created_at=run.created_at, started_at=run.started_at, completed_at=run.completed_at,
        duration_ms=run.duration_ms, pipeline_key=row.pipeline_key, pipeline_version=run.pipeline_version,
        rerun_of=run.rerun_of, environment=run.environment, trigger=run.trigger, triggered_by=run.triggered_by,
        revision=run.revision, branch=run.branch, build_url=run.build_url, labels=run.labels,
        parameters=run.parameters, error=run.error,
        totals=TotalsOut(
            tests=run.tests, passed=run.passed, failed=run.failed, errors=run.errors,
            skipped=run.skipped, flaky=run.flaky,
        ),
    )


# -- listing -----------------------------------------------------------------------------------

#: A status filter may use any of the three vocabularies: lifecycle, result, or the test_runs view.
_STATUS_FILTERS: dict[str, Any] = {
    lifecycle.PENDING: Run.status == lifecycle.PENDING,
    lifecycle.RUNNING: Run.status.in_((lifecycle.PENDING, lifecycle.RUNNING)),
    lifecycle.COMPLETED: Run.status == lifecycle.COMPLETED,
    lifecycle.CANCELLED: Run.status == lifecycle.CANCELLED,
    lifecycle.TIMEOUT: Run.status == lifecycle.TIMEOUT,
    lifecycle.PASSED: and_(Run.status == lifecycle.COMPLETED, Run.result == lifecycle.PASSED),
    lifecycle.FAILED: and_(Run.status == lifecycle.COMPLETED, Run.result == lifecycle.FAILED),
    lifecycle.SKIPPED: and_(Run.status == lifecycle.COMPLETED, Run.result == lifecycle.SKIPPED),
    lifecycle.ERROR: or_(
        and_(Run.status == lifecycle.COMPLETED, Run.result == lifecycle.ERROR), Run.status == lifecycle.TIMEOUT
    ),
}


def list_executions(
    db: Session,
    *,
    workspace: str,
    pipeline_key: str | None = None,
    status: str | None = None,
    result: str | None = None,
    environment: str | None = None,
    branch: str | None = None,
    revision: str | None = None,
    trigger: str | None = None,
    labels: dict[str, str] | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> RunPage:
    """Runs newest first, filtered, one keyset page at a time (stable under concurrent inserts)."""
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    query = _run_query()
    # Filters on the runs' own columns (ids looked up first) let the planner walk one index in
    # keyset order; filtering on the joined keys made SQLite scan the workspace's runs instead.
    query = query.where(Run.workspace_id == _workspace_id(workspace))
    if pipeline_key:
        pipeline_ids = select(Pipeline.id).where(
            Pipeline.key == pipeline_key, Pipeline.workspace_id == _workspace_id(workspace))
        query = query.where(Run.test_definition_id == pipeline_ids.scalar_subquery())
    if status:
        clause = _STATUS_FILTERS.get(status.lower())
        if clause is None:
            raise Invalid(f"unknown status '{status}' (expected one of {', '.join(_STATUS_FILTERS)})")
        query = query.where(clause)
    if result:
        if result.lower() not in lifecycle.RESULTS:
            raise Invalid(f"unknown result '{result}' (expected one of {', '.join(lifecycle.RESULTS)})")
        query = query.where(Run.result == result.lower())
    if environment:
        query = query.where(Run.environment == lifecycle.ENVIRONMENT_ALIASES.get(environment, environment))
    if branch:
        query = query.where(Run.branch == branch)
    if revision:
        query = query.where(Run.revision == revision)
    if trigger:
        if trigger.lower() not in lifecycle.TRIGGERS:
            raise Invalid(f"unknown trigger '{trigger}' (expected one of {', '.join(lifecycle.TRIGGERS)})")
        query = query.where(Run.trigger == trigger.lower())
    for name, value in (labels or {}).items():
        query = query.where(Run.labels[name].as_string() == value)
    if date_from:
        query = query.where(Run.created_at >= date_from)
    if date_to:
        query = query.where(Run.created_at < date_to)
    if cursor:
        created, run_id = _decode_cursor(cursor)
        query = query.where(tuple_(Run.created_at, Run.id) < tuple_(created, run_id))
    rows = db.execute(query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1)).all()
    items = [_execution(r) for r in rows[:limit]]
    next_cursor = _encode_cursor(rows[limit - 1].Run) if len(rows) > limit else None
    return RunPage(items=items, next_cursor=next_cursor)


def _workspace_id(key: str) -> Any:
    return select(Workspace.id).where(Workspace.key == key).scalar_subquery()


def _encode_cursor(run: Run) -> str:
    raw = f"{run.created_at.isoformat()}|{run.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, run_id = raw.split("|")
        return datetime.fromisoformat(created), uuid.UUID(run_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"invalid cursor '{cursor}' (pass back the next_cursor of a previous page)") from exc



def delete_runs(db: Session, *, workspace: str, keys: Sequence[str]) -> list[str]:
    """Delete finished runs with their results and report files; returns the keys deleted. An
    unfinished run is refused (cancel it first): its executor would write into a run that is gone.
    Files the runs left on disk (logs, attachments) are the caller's to remove afterwards."""
    from sqlalchemy import delete

    runs = [records.find_run(db, workspace=workspace, key=key, for_update=True) for key in dict.fromkeys(keys)]
    for run in runs:
        if run.status not in lifecycle.TERMINAL:
            raise Conflict(f"run '{run.key}' is {run.status}: cancel it first (`testledger cancel {run.key}`); "
                           "nothing was deleted")
    # Results and report files go with their run (ON DELETE CASCADE).
    db.execute(delete(Run).where(Run.id.in_([run.id for run in runs])))
    return [run.key for run in runs]
