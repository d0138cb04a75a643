"""Runs: open and finish by hand, fetch with bounded, paged cases, list with filters and keyset pages.

The read paths (`get_execution`, `show_execution`, `list_cases`, `list_executions`) are Core
statements over `db.reads` and build their schemas straight from rows: they run on an ORM session or
on a bare connection (`Store.read_connection()`), and importing this module does not import the ORM.
The write paths import the ORM models when they run.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel as PydanticModel
from sqlalchemy import Connection, func, select

from testledger import keys, lifecycle
from testledger.db import reads, run_pages
from testledger.db.engine import connection_of
from testledger.errors import Conflict, Invalid, NotFound
from testledger.schemas import CaseDetailOut, CaseOut, ExecutionOut, RunPage, TotalsOut

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy.orm import Session

    from testledger.provenance import Provenance

_Schema = TypeVar("_Schema", bound="BaseModel")

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
    from testledger.db import records

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
    from testledger.db import records

    records.transition(db, workspace=workspace, key=key, to=status.lower(), result=result and result.lower(),
                       force=force, actor=actor)
    return get_execution(db, workspace=workspace, key=key, with_cases=False)


# -- reading -----------------------------------------------------------------------------------


#: `runs show` lists at most this many cases; a larger run lists the ones that did not pass first.
SHOW_LIMIT = 200
#: Statuses `show_execution` lists first when a run has too many cases to list them all.
_SHOWN_FIRST = (*lifecycle.NOT_PASSED, lifecycle.SKIPPED)


_RUN = reads.runs.c
_CASE_RESULT = reads.case_results.c
_CASE = reads.cases.c


def get_execution(
    db: Session | Connection,
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


def show_execution(db: Session | Connection, *, workspace: str, key: str, limit: int = SHOW_LIMIT) -> ExecutionOut:
    """A run as `runs show` draws it, in bounded time and memory whatever its size: every case when it
    has at most `limit`, else the ones that did not pass (at most `limit`), with `cases_total` and a
    `next_cursor` that pages through all of its cases from the first."""
    execution = get_execution(db, workspace=workspace, key=key, case_limit=limit)
    if execution.next_cursor is None:
        execution.cases_total = len(execution.cases or [])
        return execution
    execution.cases = list_cases(db, run_id=execution.id, statuses=_SHOWN_FIRST, limit=limit)
    execution.cases_total = connection_of(db).scalar(
        select(func.count()).select_from(reads.case_results).where(_CASE_RESULT.run_id == execution.id)) or 0
    execution.next_cursor = "0"
    return execution


def _find_execution(db: Session | Connection, *, workspace: str, key: str) -> ExecutionOut:
    if keys.workspace_of(key) != workspace:
        raise NotFound(f"run '{key}' not found in workspace {workspace}")
    row = connection_of(db).execute(_RUN_QUERY.where(_RUN.key == key)).one_or_none()
    if row is None:
        raise NotFound(f"run '{key}' not found")
    return _execution(row)


def _decode_case_cursor(cursor: str) -> int:
    if not (cursor.isascii() and cursor.isdigit()):  # "¹" is a digit to isdigit, not to int
        raise Invalid(f"invalid cursor '{cursor}' (pass back the next cursor `runs show` printed, e.g. 200)")
    return int(cursor)


def list_cases(
    db: Session | Connection, *, run_id: uuid.UUID, statuses: Sequence[str] | None = None, limit: int | None = None,
    first_index: int = 0,
) -> list[CaseOut]:
    """A run's case results in index order, filtered and limited in SQL."""
    query = _CASES_QUERY.where(_CASE_RESULT.run_id == run_id).limit(limit)
    if first_index:
        query = query.where(_CASE_RESULT.idx >= first_index)
    if statuses is not None:
        query = query.where(_CASE_RESULT.status.in_(statuses))
    # Built without validation: every value comes typed from its column (see `_execution`).
    return [
        _built(CaseOut, {
            "index": r.idx, "parent_index": r.parent_idx, "case_key": r.key or display_key(r.classname, r.name),
            "name": r.name, "suite": r.suite or None, "classname": r.classname or None, "status": r.status.upper(),
            "duration_ms": None if r.duration_ms is None else round(r.duration_ms),
            "error": error_text(r.status, r.error_type, r.message), "failure_category": r.failure_category,
            "attempts": r.attempt_count, "flaky": bool(r.flaky), "runtime_id": r.worker,
        })
        for r in connection_of(db).execute(query)
    ]


_CASES_QUERY = (
    select(
        _CASE_RESULT.idx, _CASE_RESULT.parent_idx, _CASE_RESULT.status, _CASE_RESULT.duration_ms,
        _CASE_RESULT.message, _CASE_RESULT.error_type, _CASE_RESULT.failure_category, _CASE_RESULT.attempt_count,
        _CASE_RESULT.flaky, _CASE_RESULT.worker, _CASE.key, _CASE.name, _CASE.suite, _CASE.classname,
    )
    .select_from(reads.case_results.join(reads.cases, _CASE.id == _CASE_RESULT.case_id))
    .order_by(_CASE_RESULT.idx)
)


def get_case(db: Session, *, workspace: str, key: str, index: int) -> CaseDetailOut:
    """One case result with everything recorded about it: the seed's `get_execution_case`."""
    from testledger.attempts import attempt_out
    from testledger.db import records
    from testledger.db.tables import Case, CaseResult

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


#: The columns `_execution` reads, in the order it unpacks them.
_RUN_QUERY = select(
    _RUN.key, _RUN.id, reads.workspaces.c.key.label("workspace"), _RUN.status, _RUN.result, _RUN.created_at,
    _RUN.started_at, _RUN.completed_at, _RUN.duration_ms, reads.pipelines.c.key.label("pipeline_key"),
    _RUN.pipeline_version, _RUN.rerun_of, _RUN.environment, _RUN.trigger, _RUN.triggered_by, _RUN.revision,
    _RUN.branch, _RUN.build_url, _RUN.labels, _RUN.parameters, _RUN.error, _RUN.tests, _RUN.passed, _RUN.failed,
    _RUN.errors, _RUN.skipped, _RUN.flaky,
).select_from(
    reads.runs.join(reads.workspaces, reads.workspaces.c.id == _RUN.workspace_id)
    .outerjoin(reads.pipelines, reads.pipelines.c.id == _RUN.test_definition_id)
)


def _execution(row: Any) -> ExecutionOut:
    """A run row (`_RUN_QUERY`) as the schema, built without validation: every value comes typed from
    its column (UTC datetimes, UUIDs, ints, decoded JSON), so validating it again would only cost time
    (a third of a 50-run page). Its dicts name every field in field order, so they go to `_instance`
    unchecked; `tests/core/test_runs_service.py` and `test_run_pages.py` check they validate unchanged."""
    (key, id_, workspace, status, result, created_at, started_at, completed_at, duration_ms, pipeline_key,
     pipeline_version, rerun_of, environment, trigger, triggered_by, revision, branch, build_url, labels, parameters,
     error, tests, passed, failed, errors, skipped, flaky) = row
    return _instance(ExecutionOut, {
        "execution_id": key, "id": id_, "workspace": workspace, "status": status.upper(),
        "result": result.upper() if result else None, "test_run_status": lifecycle.view_status(status, result),
        "created_at": created_at, "started_at": started_at, "completed_at": completed_at, "duration_ms": duration_ms,
        "pipeline_key": pipeline_key, "pipeline_version": pipeline_version, "rerun_of": rerun_of,
        "environment": environment,
        "trigger": trigger, "triggered_by": triggered_by, "revision": revision, "branch": branch,
        "build_url": build_url, "labels": labels, "parameters": parameters, "error": error,
        "totals": _instance(TotalsOut, {"tests": tests, "passed": passed, "failed": failed, "errors": errors,
                                     "skipped": skipped, "flaky": flaky}),
        "cases": None, "cases_total": None, "next_cursor": None,
    })


@cache
def _field_names(schema: type[BaseModel]) -> tuple[str, ...]:
    return tuple(schema.model_fields)  # a class property that costs more than building the model


def _built(schema: type[_Schema], values: dict[str, Any]) -> _Schema:
    """`schema.model_construct(**values)` for values that name every field, as pydantic's own
    shortcut does it minus its per-field look-ups of aliases and defaults (~15 µs a model, half of
    building a page). A test checks the result equals validating the same values, to the order of
    the keys `--json` prints (serialisation follows the instance's dict, so it is kept in field order)."""
    names = _field_names(schema)
    if len(values) != len(names):  # a field left out (a new one?): pydantic fills its default
        return schema.model_construct(**values)
    if tuple(values) != names:
        values = {name: values[name] for name in names}
    return _instance(schema, values)


_new = object.__new__
_set = object.__setattr__
# pydantic's own slots, set through their descriptors: half the cost of `object.__setattr__` by name.
_set_fields_set = PydanticModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = PydanticModel.__dict__["__pydantic_extra__"].__set__
_set_private = PydanticModel.__dict__["__pydantic_private__"].__set__


def _instance(schema: type[_Schema], values: dict[str, Any]) -> _Schema:
    """The model holding `values`, which name every field of `schema` in field order (`_built` checks that)."""
    model = _new(schema)
    _set(model, "__dict__", values)
    _set_fields_set(model, set(values))
    _set_extra(model, None)
    _set_private(model, None)
    return model


# -- listing -----------------------------------------------------------------------------------

def list_executions(
    db: Session | Connection,
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
    """Runs newest first, filtered, one keyset page at a time (stable under concurrent inserts).

    The page is one statement on the driver (`db.run_pages`): the API's run list answers at the
    speed of the query rather than of SQLAlchemy's per-row processing (issue 11)."""
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if status and status.lower() not in run_pages.STATUS_FILTERS:
        raise Invalid(f"unknown status '{status}' (expected one of {', '.join(run_pages.STATUS_FILTERS)})")
    if result and result.lower() not in lifecycle.RESULTS:
        raise Invalid(f"unknown result '{result}' (expected one of {', '.join(lifecycle.RESULTS)})")
    if trigger and trigger.lower() not in lifecycle.TRIGGERS:
        raise Invalid(f"unknown trigger '{trigger}' (expected one of {', '.join(lifecycle.TRIGGERS)})")
    # A time without a zone is UTC, as `runs list --from` reads it (the store cannot guess another).
    if date_from is not None and date_from.tzinfo is None:
        date_from = date_from.replace(tzinfo=UTC)
    if date_to is not None and date_to.tzinfo is None:
        date_to = date_to.replace(tzinfo=UTC)
    rows = run_pages.newest_runs(
        connection_of(db), workspace=workspace, pipeline_key=pipeline_key, status=status and status.lower(),
        equal={"result": result and result.lower(), "trigger": trigger and trigger.lower(),
               "environment": environment and lifecycle.ENVIRONMENT_ALIASES.get(environment, environment),
               "branch": branch, "revision": revision},
        labels=(labels or {}).items(), created=(date_from, date_to),
        before=_decode_cursor(cursor) if cursor else None, limit=limit + 1,
    )
    items = [_execution(r) for r in rows[:limit]]
    next_cursor = _encode_cursor(items[-1]) if len(rows) > limit else None
    return _built(RunPage, {"items": items, "next_cursor": next_cursor})


def _encode_cursor(run: ExecutionOut) -> str:
    raw = f"{run.created_at.isoformat()}|{run.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, run_id = raw.split("|")
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:  # `_encode_cursor` writes UTC times with their offset
            raise ValueError(created)
        return at, uuid.UUID(run_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"invalid cursor '{cursor}' (pass back the next_cursor of a previous page)") from exc



def delete_runs(db: Session, *, workspace: str, keys: Sequence[str]) -> list[str]:
    """Delete finished runs with their results, report files and their share of the analytics rollups;
    returns the keys deleted. An unfinished run is refused (cancel it first): its executor would write
    into a run that is gone. Files the runs left on disk (logs, attachments) are the caller's to remove
    afterwards."""
    from sqlalchemy import delete

    from testledger.analytics.fold import forget
    from testledger.db import records
    from testledger.db.tables import CaseResult, Run

    runs = [records.find_run(db, workspace=workspace, key=key, for_update=True) for key in dict.fromkeys(keys)]
    for run in runs:
        if run.status not in lifecycle.TERMINAL:
            raise Conflict(f"run '{run.key}' is {run.status}: cancel it first (`testledger cancel {run.key}`); "
                           "nothing was deleted")
    ids = [run.id for run in runs]
    # Their rollups first (they are counted again from the runs that stay), then their results (no foreign
    # key on that table: migration 0010), then the runs with their report files (ON DELETE CASCADE).
    forget(db.connection(), ids)
    db.execute(delete(CaseResult).where(CaseResult.run_id.in_(ids)))
    db.execute(delete(Run).where(Run.id.in_(ids)))
    return [run.key for run in runs]
