"""Executing runs through the database: create from a pipeline, heartbeat, cancel, finish, repair stuck runs.

Run state, cancel requests and heartbeats live in `test_runs`, so any executor (the local one now,
Celery workers later) and any adapter (CLI, API, a scheduler) coordinate through the same rows.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, and_, select

from testledger import keys, lifecycle
from testledger.db import reads, run_sql
from testledger.db.bulk import write_results
from testledger.db.engine import connection_of
from testledger.db.rows import NewResult
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid, NotFound
from testledger.pipelinefile import SOURCE_DIRECTORY, PipelineSpec
from testledger.provenance import Provenance, default_environment
from testledger.schemas import ExecutionOut
from testledger.services import runs

if TYPE_CHECKING:  # a run of a stored pipeline is created, run and finished without the ORM
    from sqlalchemy.orm import Session

    from testledger.db.tables import Run

#: Executors that beat; runs bracketed by `runs start`/`runs finish` ("cli") are never repaired.
HEARTBEATING = ("local:", "celery:")
#: Executors that do not beat (a pytest session writes only when a test ends, and a test may take
#: long) but name their host and process: repaired only once that process is gone.
PROCESS_BOUND = ("pytest:",)


def local_executor_id() -> str:
    return f"local:{socket.gethostname()}:{os.getpid()}"


_RUN, _PIPELINE, _VERSION = reads.runs.c, reads.pipelines.c, reads.pipeline_versions.c


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """The current version of a stored pipeline, as its document was stored (not validated yet)."""

    pipeline_id: uuid.UUID
    version: int
    document: dict[str, Any]

    @property
    def cases(self) -> int:
        return len(self.document.get("cases") or [])

    @property
    def directory(self) -> Path | None:
        """The directory the pipeline file was applied from (None when not applied from a file)."""
        directory = self.document.get(SOURCE_DIRECTORY)
        return Path(directory) if isinstance(directory, str) else None


def stored_version(db: Session | Connection, *, workspace: str, key: str) -> StoredVersion:
    """The current version of pipeline `key`, in one statement; `NotFound` names the workspace or the
    pipeline that is missing, `Invalid` a pipeline only known from ingested reports."""
    conn = connection_of(db)
    row = conn.execute(
        select(_PIPELINE.id, _PIPELINE.version, _VERSION.spec)
        .select_from(reads.workspaces.join(reads.pipelines, and_(
            _PIPELINE.workspace_id == reads.workspaces.c.id, _PIPELINE.key == key))
            .outerjoin(reads.pipeline_versions, and_(
                _VERSION.pipeline_id == _PIPELINE.id, _VERSION.version == _PIPELINE.version)))
        .where(reads.workspaces.c.key == workspace)
    ).one_or_none()
    if row is None:
        if conn.scalar(select(reads.workspaces.c.id).where(reads.workspaces.c.key == workspace)) is None:
            raise NotFound(f"workspace '{workspace}' not found (apply a pipeline file to create it)")
        raise NotFound(f"pipeline '{key}' not found in workspace {workspace}")
    _check_runnable(key, row.version)
    if row.spec is None:
        raise NotFound(f"version {row.version} of pipeline '{key}' not found")
    return StoredVersion(row.id, row.version, row.spec)


def _check_runnable(key: str, version: int) -> None:
    if version == 0:
        raise Invalid(
            f"pipeline '{key}' has no cases to run: it is only known from ingested reports "
            "(apply a pipeline file with `testledger pipelines apply FILE`)"
        )


def create_pipeline_run(
    db: Session | Connection,
    *,
    workspace: str,
    pipeline_key: str,
    provenance: Provenance,
    allowed_environments: Sequence[str],
    environment: str | None = None,
    overrides: dict[str, str] | None = None,
    workdir: Path | None = None,
    parallelism: int | None = None,
    stored: StoredVersion | None = None,
) -> ExecutionOut:
    """A `pending` run of the pipeline's current version (`stored`, when the caller read it in this
    transaction); secret parameters are stored as `***`. Everything that would stop the run from
    starting (an unknown parameter, an unset variable, an unreadable `from_file` under `workdir`, a bad
    `parallelism`) is refused before the run exists."""
    from testledger.execute.plan import MAX_PARALLELISM, masked_parameters, resolve_parameters

    if parallelism is not None and not 1 <= parallelism <= MAX_PARALLELISM:
        raise Invalid(f"--parallel must be between 1 and {MAX_PARALLELISM}, got {parallelism}")
    conn = connection_of(db)
    stored = stored or stored_version(conn, workspace=workspace, key=pipeline_key)
    spec = PipelineSpec.from_stored(stored.document)
    if workdir is not None:
        resolve_parameters(spec, overrides or {}, workdir=workdir)
    key = run_sql.create_pending_run(
        conn, workspace=workspace, pipeline_key=pipeline_key, pipeline_version=stored.version,
        actor=provenance.actor, environment=environment or spec.environment or default_environment(),
        allowed_environments=allowed_environments, trigger=provenance.trigger,
        parameters=masked_parameters(spec, overrides or {}) or None, revision=provenance.revision,
        branch=provenance.branch, build_url=provenance.build_url,
    )
    return runs.get_execution(conn, workspace=workspace, key=key, with_cases=False)


def version_spec(
    db: Session | Connection, *, pipeline_id: uuid.UUID, pipeline_key: str, version: int
) -> PipelineSpec:
    """A stored version of a pipeline, as the executor reads it."""
    _check_runnable(pipeline_key, version)
    document = connection_of(db).scalar(
        select(_VERSION.spec).where(_VERSION.pipeline_id == pipeline_id, _VERSION.version == version))
    if document is None:
        raise NotFound(f"version {version} of pipeline '{pipeline_key}' not found")
    return PipelineSpec.from_stored(document)


class RunSpec(BaseModel):
    """What an executor needs to start a run: where its cases are stored, and the pipeline version it executes."""

    run_key: str
    workspace: str
    workspace_id: int
    spec: PipelineSpec


def run_spec(db: Session | Connection, *, key: str) -> RunSpec:
    """A run and the pipeline version it executes (only the cases it names, for a rerun), for an
    executor about to start it.

    The executor acts for the run's own workspace: the one its key names.
    """
    from testledger.execute.selection import only_cases

    conn = connection_of(db)
    row = conn.execute(
        select(_RUN.workspace_id, _RUN.pipeline_version, _RUN.case_keys, _PIPELINE.id, _PIPELINE.key,
               _PIPELINE.version)
        .select_from(reads.runs.outerjoin(reads.pipelines, _PIPELINE.id == _RUN.test_definition_id))
        .where(_RUN.key == key)
    ).one_or_none()
    if row is None:
        raise NotFound(f"run '{key}' not found")
    if row.id is None:
        raise Invalid(f"run '{key}' has no pipeline to execute")
    version = row.version if row.pipeline_version is None else row.pipeline_version
    spec = version_spec(conn, pipeline_id=row.id, pipeline_key=row.key, version=version)
    if row.case_keys is not None:
        spec = only_cases(spec, row.case_keys)
    return RunSpec(run_key=key, workspace=keys.workspace_of(key), workspace_id=row.workspace_id, spec=spec)


def start_run(db: Session | Connection, *, key: str, executor: str) -> None:
    """pending -> running, owned by `executor` (e.g. `local:<host>:<pid>`)."""
    run_sql.start_run(connection_of(db), key=key, executor=executor)


class RunSignal(BaseModel):
    """What the executor learns when it syncs: stop because of a cancel request, or because the run
    was ended elsewhere (repaired as stuck, cancelled while pending)."""

    model_config = ConfigDict(frozen=True)

    cancel_requested: bool
    ended: bool


def sync_run(db: Session | Connection, *, key: str, results: Sequence[NewResult], now: datetime) -> RunSignal:
    """Record finished results, beat the heartbeat, and read the cancel request, in one transaction."""
    conn = connection_of(db)
    run = run_sql.hold_run(conn, key=key)
    if run.status in lifecycle.TERMINAL:
        return RunSignal(cancel_requested=run.cancel_requested, ended=True)
    if results:
        write_results(conn, run_id=run.id, workspace_id=run.workspace_id, results=results, now=now)
    run_sql.beat(conn, run=run, now=now)
    return RunSignal(cancel_requested=run.cancel_requested, ended=False)


def finish_run(db: Session | Connection, *, key: str, status: str, error: str | None = None) -> bool:
    """End a run (completed with its derived result, cancelled or timeout); False if already ended elsewhere."""
    return run_sql.end_run(connection_of(db), key=key, status=status, error=error)


def executor_holds(run: Run) -> bool:
    """Whether an executor that polls for cancel requests runs this run. Runs opened by `runs start`,
    by an ingest or by the pytest plugin have none: nobody would ever act on a request."""
    return run.status == lifecycle.RUNNING and (run.executor or "").startswith(HEARTBEATING)


def request_cancel(db: Session, *, workspace: str, key: str) -> ExecutionOut:
    """Cancel a run: a run no executor holds (pending, or opened by hand or by a pytest session) ends
    at once; a run an executor is running is flagged for that executor to stop at its next sync."""
    from testledger.db import records

    run = records.find_run(db, workspace=workspace, key=key, for_update=True)
    if run.status in lifecycle.TERMINAL:
        raise Conflict(f"run '{key}' is already {run.status}; there is nothing to cancel")
    if not executor_holds(run):
        records.transition(db, workspace=workspace, key=key, to=lifecycle.CANCELLED, run=run)
    else:
        run.cancel_requested = True
        db.flush()
    return runs.get_execution(db, workspace=workspace, key=key, with_cases=False)


# -- stuck runs ------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # A killed process that its parent has not reaped yet is a zombie: gone for our purposes.
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def stuck_reason(run: Run, *, now: datetime, stale_after: float, host: str | None = None) -> str | None:
    """Why this unfinished run will never finish on its own, or None while its executor is alive."""
    executor = run.executor or ""
    if run.status in lifecycle.TERMINAL or not executor.startswith(HEARTBEATING + PROCESS_BOUND):
        return None
    parts = executor.split(":")
    on_this_host = parts[0] in ("local", "pytest") and len(parts) == 3 and parts[2].isascii() and parts[2].isdigit()
    if on_this_host and parts[1] == (host or socket.gethostname()) and not _pid_alive(int(parts[2])):
        return f"executor {executor} is gone (process {parts[2]} is not running)"
    if executor.startswith(PROCESS_BOUND):
        return None
    last = run.heartbeat_at or run.created_at
    age = (now - last).total_seconds()
    if age > stale_after:
        return f"executor {executor} sent no heartbeat for {age:.0f}s (stale after {stale_after:g}s)"
    return None


def repair_run(db: Session, *, run: Run, reason: str, now: datetime) -> None:
    """End a stuck run `completed`/`error`; its unfinished cases are recorded `error`/`infrastructure`."""
    from testledger.db import records
    from testledger.db.tables import CaseResult
    from testledger.execute.plan import build_plan

    finished = set(db.scalars(select(CaseResult.idx).where(CaseResult.run_id == run.id)))
    missing: list[NewResult] = []
    spec: PipelineSpec | None
    try:
        spec = run_spec(db, key=run.key).spec
    except (Invalid, NotFound):
        spec = None
    if spec is not None:
        plan = build_plan(spec, run_key=run.key, workspace_id=run.workspace_id, overrides={}, workdir=Path.cwd(),
                          resolve=False)
        message = f"never finished: {reason}"
        missing = [
            NewResult(idx=c.index, case=c.case, status=lifecycle.ERROR, message=message,
                      failure_category=lifecycle.INFRASTRUCTURE, completed_at=now)
            for c in plan.cases if c.index not in finished
        ]
    if missing:
        records.record_results(db, run=run, results=missing)
    records.transition(db, workspace=keys.workspace_of(run.key), key=run.key, to=lifecycle.COMPLETED,
                       result=lifecycle.ERROR, error=reason, run=run)


def refresh_run(
    db: Session, *, workspace: str, key: str, now: datetime | None = None, stale_after: float
) -> ExecutionOut:
    """The run's true state: a run whose executor is gone or silent is repaired first."""
    from testledger.db import records

    run = records.find_run(db, workspace=workspace, key=key, for_update=True)
    current = now or utcnow()
    reason = stuck_reason(run, now=current, stale_after=stale_after)
    if reason:
        repair_run(db, run=run, reason=reason, now=current)
    return runs.get_execution(db, workspace=workspace, key=key)


def repair_stuck_runs(db: Session, *, now: datetime, stale_after: float) -> list[str]:
    """Repair every stuck run of every workspace (local administration: a scheduler's periodic sweep);
    returns the keys repaired."""
    from sqlalchemy import or_

    from testledger.db.tables import Run

    heartbeating = or_(*(Run.executor.startswith(prefix) for prefix in HEARTBEATING + PROCESS_BOUND))
    candidates = db.scalars(
        select(Run).where(Run.status.in_((lifecycle.PENDING, lifecycle.RUNNING)), heartbeating).order_by(Run.created_at)
    ).all()
    repaired = []
    for run in candidates:
        reason = stuck_reason(run, now=now, stale_after=stale_after)
        if reason:
            repair_run(db, run=run, reason=reason, now=now)
            repaired.append(run.key)
    return repaired


@dataclass(frozen=True, slots=True)
class CaseLog:
    run_key: str
    running: bool
    #: Whether the case has a recorded result; until then its log may still be growing.
    finished: bool
    #: The stored log reference; None while the case runs, or when it printed nothing.
    ref: str | None


def case_log_ref(db: Session, *, workspace: str, key: str, index: int) -> CaseLog:
    """Where case `index` of a run logs, and whether the run is still going."""
    from testledger.db import records
    from testledger.db.tables import CaseResult

    run = records.find_run(db, workspace=workspace, key=key)
    if index < 0:
        raise Invalid(f"case index must be 0 or more, got {index}")
    row = db.execute(
        select(CaseResult.log_ref).where(CaseResult.run_id == run.id, CaseResult.idx == index)
    ).one_or_none()
    return CaseLog(run_key=run.key, running=run.status not in lifecycle.TERMINAL, finished=row is not None,
                   ref=row.log_ref if row else None)
