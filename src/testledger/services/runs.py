"""Runs: create, move through the lifecycle, fetch with cases, list with filters and keyset pages."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.db.bulk import NewResult, write_results
from testledger.db.tables import Case, CaseResult, Pipeline, Run, Workspace
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid, NotFound
from testledger.schemas import AttemptOut, CaseDetailOut, CaseOut, ExecutionOut, RunPage, TotalsOut
from testledger.services.analytics.rollup import record_run
from testledger.services.pipelines import ensure_pipeline
from testledger.services.workspaces import ensure_workspace, next_run_number

MAX_PAGE = 500


def create_run(
    db: Session,
    *,
    workspace: str,
    actor: str,
    environment: str,
    allowed_environments: Sequence[str],
    pipeline_key: str | None = None,
    trigger: str = "manual",
    parameters: dict[str, Any] | None = None,
    revision: str | None = None,
    branch: str | None = None,
    build_url: str | None = None,
    labels: dict[str, str] | None = None,
    executor: str | None = None,
    pipeline_version: int | None = None,
    started: bool = False,
) -> Run:
    """A new `pending` run with its key `<WORKSPACE>-<MMDD>-<n>`; `running` at once when `started`
    (ingest and `runs start`, where nothing waits between creating and starting)."""
    if trigger not in lifecycle.TRIGGERS:
        raise Invalid(f"unknown trigger '{trigger}' (expected one of {', '.join(lifecycle.TRIGGERS)})")
    env = lifecycle.normalise_environment(environment, list(allowed_environments))
    ws = ensure_workspace(db, key=workspace)
    pipeline = ensure_pipeline(db, workspace=ws, key=pipeline_key) if pipeline_key else None
    if pipeline_version is None and pipeline is not None:
        pipeline_version = pipeline.version
    now = utcnow()
    number = next_run_number(db, workspace_id=ws.id)
    run = Run(
        key=f"{ws.key}-{now:%m%d}-{number}", workspace_id=ws.id,
        test_definition_id=pipeline.id if pipeline else None,
        pipeline_version=pipeline_version,
        status=lifecycle.RUNNING if started else lifecycle.PENDING, created_at=now,
        started_at=now if started else None, heartbeat_at=now if started else None, environment=env,
        triggered_by=actor, trigger=trigger,
        parameters=parameters, revision=revision, branch=branch, build_url=build_url, labels=labels,
        executor=executor, cancel_requested=False,
        tests=0, passed=0, failed=0, errors=0, skipped=0, flaky=0, infra_faults=0,
    )
    db.add(run)
    db.flush()
    return run


def find_run(db: Session, *, workspace: str | None, key: str, for_update: bool = False) -> Run:
    """The run with this key (in this workspace when one is given), or `NotFound`."""
    query = select(Run).where(Run.key == key)
    if workspace is not None:
        query = query.join(Workspace, Workspace.id == Run.workspace_id).where(Workspace.key == workspace)
    if for_update:
        query = query.with_for_update()
    run = db.scalar(query)
    if run is None:
        raise NotFound(f"run '{key}' not found")
    return run


def transition(
    db: Session,
    *,
    workspace: str | None,
    key: str,
    to: str,
    result: str | None = None,
    error: str | None = None,
    run: Run | None = None,
    duration_ms: int | None = None,
) -> Run:
    """Move a run along its lifecycle; terminal runs are immutable and `completed_at` is set once.

    `result` only applies to `completed`; when omitted it is derived from the case results.
    A caller that already holds the run row in this transaction may pass it as `run`; `duration_ms`
    replaces the wall-clock duration where the run's time is known better (an ingested report's).
    """
    if run is None or run.key != key:
        run = find_run(db, workspace=workspace, key=key, for_update=True)
    lifecycle.check_transition(run.key, run.status, to)
    if result is not None and to != lifecycle.COMPLETED:
        raise Invalid(f"a result applies only to a completed run, not to '{to}'")
    if result is not None and result not in lifecycle.RESULTS:
        raise Invalid(f"unknown result '{result}' (expected one of {', '.join(lifecycle.RESULTS)})")
    now = utcnow()
    if error is not None:
        run.error = error
    if to == lifecycle.RUNNING:
        run.started_at = now
        run.heartbeat_at = now
    else:
        run.completed_at = now
        run.duration_ms = _duration_ms(run.started_at, now) if duration_ms is None else duration_ms
        if to == lifecycle.COMPLETED:
            run.result = result or lifecycle.derive_result(totals_of(run), run_error=error is not None)
    run.status = to
    db.flush()
    if to in lifecycle.TERMINAL:
        record_run(db, run=run)  # the analytics rollups, once per finished run (services/analytics)
    return run


def _duration_ms(started: datetime | None, ended: datetime) -> int:
    return 0 if started is None else max(0, int((ended - started).total_seconds() * 1000))


def record_results(db: Session, *, run: Run, results: Sequence[NewResult]) -> None:
    """Add case results to a run that has not finished, in one batch, updating its counters."""
    if run.status in lifecycle.TERMINAL:
        raise Conflict(f"run '{run.key}' is already {run.status}; results cannot be added")
    write_results(db, run_id=run.id, workspace_id=run.workspace_id, results=results, now=utcnow())
    db.refresh(run)


def next_result_index(db: Session, *, run_id: uuid.UUID) -> int:
    """The index the next result of a run gets (0 for a run without results)."""
    last = db.scalar(select(func.coalesce(func.max(CaseResult.idx), -1)).where(CaseResult.run_id == run_id))
    return int(last if last is not None else -1) + 1


def totals_of(run: Run) -> lifecycle.Totals:
    return lifecycle.Totals(
        tests=run.tests, passed=run.passed, failed=run.failed, errors=run.errors,
        skipped=run.skipped, flaky=run.flaky, infra_faults=run.infra_faults,
    )


# -- reading -----------------------------------------------------------------------------------


def get_execution(
    db: Session,
    *,
    workspace: str | None,
    key: str,
    with_cases: bool = True,
    statuses: Sequence[str] | None = None,
    case_limit: int | None = None,
) -> ExecutionOut:
    """A run in the seed's execution shape, with its cases in index order (only those with one of
    `statuses`, and at most `case_limit` of them, when given)."""
    row = db.execute(_run_query().where(Run.key == key)).one_or_none()
    if row is None or (workspace is not None and row.workspace != workspace):
        raise NotFound(f"run '{key}' not found")
    execution = _execution(row)
    if with_cases:
        execution.cases = list_cases(db, run_id=row.Run.id, statuses=statuses, limit=case_limit)
    return execution


def list_cases(
    db: Session, *, run_id: uuid.UUID, statuses: Sequence[str] | None = None, limit: int | None = None
) -> list[CaseOut]:
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


def get_case(db: Session, *, workspace: str | None, key: str, index: int) -> CaseDetailOut:
    """One case result with everything recorded about it: the seed's `get_execution_case`."""
    run = find_run(db, workspace=workspace, key=key)
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
        attempt_details=[
            AttemptOut(status=a.get("status", "error").upper(), duration_ms=a.get("duration_ms"),
                       message=a.get("message"), error_type=a.get("error_type"))
            for a in r.attempts or []
        ],
    )


def display_key(classname: str | None, name: str) -> str:
    return f"{classname}::{name}" if classname else name


def error_text(status: str, error_type: str | None, message: str | None) -> str | None:
    if status in ("passed", "skipped"):
        return None
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
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
        environment=run.environment, trigger=run.trigger, triggered_by=run.triggered_by,
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
    "pending": Run.status == "pending",
    "running": Run.status.in_(("pending", "running")),
    "completed": Run.status == "completed",
    "cancelled": Run.status == "cancelled",
    "timeout": Run.status == "timeout",
    "passed": and_(Run.status == "completed", Run.result == "passed"),
    "failed": and_(Run.status == "completed", Run.result == "failed"),
    "skipped": and_(Run.status == "completed", Run.result == "skipped"),
    "error": or_(and_(Run.status == "completed", Run.result == "error"), Run.status == "timeout"),
}


def list_executions(
    db: Session,
    *,
    workspace: str | None = None,
    pipeline_key: str | None = None,
    status: str | None = None,
    environment: str | None = None,
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
    if workspace:
        query = query.where(Run.workspace_id == _workspace_id(workspace))
    if pipeline_key:
        pipeline_ids = select(Pipeline.id).where(Pipeline.key == pipeline_key)
        if workspace:
            pipeline_ids = pipeline_ids.where(Pipeline.workspace_id == _workspace_id(workspace))
        query = query.where(Run.test_definition_id == pipeline_ids.scalar_subquery())
    if status:
        clause = _STATUS_FILTERS.get(status.lower())
        if clause is None:
            raise Invalid(f"unknown status '{status}' (expected one of {', '.join(_STATUS_FILTERS)})")
        query = query.where(clause)
    if environment:
        query = query.where(Run.environment == lifecycle.ENVIRONMENT_ALIASES.get(environment, environment))
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
