"""Rows services share inside one transaction: a workspace, a pipeline, a run moved along its lifecycle.

These return ORM objects and never leave `services/` (and the executor's and ingest's own writers):
adapters get the Pydantic schemas the public service functions build from them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger import keys, lifecycle
from testledger.db import run_sql
from testledger.db.bulk import write_results
from testledger.db.driver_sql import DriverSql
from testledger.db.engine import connection_of
from testledger.db.rows import NewResult
from testledger.db.run_sql import check_lengths, checked_environment, new_run
from testledger.db.tables import Pipeline, Run, Workspace
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid, NotFound

logger = logging.getLogger(__name__)


# -- workspaces and pipelines ------------------------------------------------------------------


def ensure_workspace(db: Session, *, key: str, name: str | None = None) -> Workspace:
    """The workspace with this key, created on first use."""
    ws = db.get(Workspace, run_sql.ensure_workspace_id(connection_of(db), key=key, name=name))
    assert ws is not None  # made or found in this transaction
    return ws


def find_workspace(db: Session, *, key: str, missing: str) -> Workspace:
    """The workspace with this key, or `NotFound` with the caller's message."""
    ws = db.scalar(select(Workspace).where(Workspace.key == key))
    if ws is None:
        raise NotFound(missing)
    return ws


def find_pipeline(db: Session, *, workspace: Workspace, key: str) -> Pipeline:
    pipeline = db.scalar(select(Pipeline).where(Pipeline.workspace_id == workspace.id, Pipeline.key == key))
    if pipeline is None:
        raise NotFound(f"pipeline '{key}' not found in workspace {workspace.key}")
    return pipeline


def ensure_pipeline(db: Session, *, workspace: Workspace, key: str, name: str | None = None) -> Pipeline:
    """The pipeline with this key; created (version 0, no cases) when a run names an unknown one,
    as `testledger ingest --pipeline` and `runs start --pipeline` do for CI-only pipelines."""
    pipeline_id, _version = run_sql.ensure_pipeline(connection_of(db), workspace_id=workspace.id, key=key, name=name)
    pipeline = db.get(Pipeline, pipeline_id)
    assert pipeline is not None  # made or found in this transaction
    return pipeline


# -- runs --------------------------------------------------------------------------------------


def create_run(
    db: Session,
    *,
    workspace: str,
    actor: str,
    environment: str,
    allowed_environments: Sequence[str],
    pipeline_key: str | None = None,
    trigger: str = lifecycle.TRIGGER_MANUAL,
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
    check_lengths(revision=revision, branch=branch, actor=actor)
    env = checked_environment(trigger, environment, allowed_environments)
    ws = ensure_workspace(db, key=workspace)
    pipeline = ensure_pipeline(db, workspace=ws, key=pipeline_key) if pipeline_key else None
    if pipeline_version is None and pipeline is not None:
        pipeline_version = pipeline.version
    run = Run(**_run_values(
        db, workspace_id=ws.id, workspace=ws.key, pipeline_id=pipeline.id if pipeline else None,
        pipeline_version=pipeline_version, started=started, environment=env, triggered_by=actor, trigger=trigger,
        parameters=parameters, revision=revision, branch=branch, build_url=build_url, labels=labels,
        executor=executor,
    ))
    db.add(run)
    db.flush()
    logger.info("run %s created (pipeline %s, %s, by %s)", run.key, pipeline_key or "-", env, actor)
    return run


def _run_values(
    db: Session, *, workspace_id: int, workspace: str, pipeline_id: uuid.UUID | None, pipeline_version: int | None,
    started: bool, **given: Any,
) -> dict[str, Any]:
    """A new run's columns, its number taken from the workspace."""
    now = utcnow()
    number = run_sql.next_run_number(connection_of(db), workspace_id=workspace_id)
    return new_run(workspace_id=workspace_id, key=keys.run_key(workspace, now, number), now=now,
                    pipeline_id=pipeline_id, pipeline_version=pipeline_version, started=started, **given)


def find_run(db: Session, *, workspace: str, key: str, for_update: bool = False) -> Run:
    """The run with this key in this workspace, or `NotFound` (also for another workspace's run)."""
    if keys.workspace_of(key) != workspace:
        raise NotFound(f"run '{key}' not found in workspace {workspace}")
    query = select(Run).where(Run.key == key)
    if for_update:
        query = query.with_for_update()
    run = db.scalar(query)
    if run is None:
        raise NotFound(f"run '{key}' not found")
    return run


def transition(
    db: Session,
    *,
    workspace: str,
    key: str,
    to: str,
    result: str | None = None,
    error: str | None = None,
    run: Run | None = None,
    duration_ms: int | None = None,
    force: bool = False,
    actor: str | None = None,
) -> Run:
    """Move a run along its lifecycle; terminal runs are immutable and `completed_at` is set once.

    `result` only applies to `completed`; when omitted it is derived from the case results. A
    `result` other than the derived one is noted on the run (label `result_override`); one that
    hides failures (passed over failed cases) needs `force`.
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
        run.duration_ms = lifecycle.elapsed_ms(run.started_at, now) if duration_ms is None else duration_ms
        if to == lifecycle.COMPLETED:
            derived = lifecycle.derive_result(totals_of(run), run_error=error is not None)
            if result is not None and result != derived:
                _override_result(run, result=result, derived=derived, force=force, actor=actor)
            run.result = result or derived
    run.status = to
    db.flush()
    if to in lifecycle.TERMINAL and run.tests:
        # Queued for the analytics rollups in the transaction that ends it; folded later, in batches.
        sql = DriverSql.of(db)
        sql.execute(sql.enqueue, (sql.uuid_in(run.id),))
    logger.info("run %s %s%s", run.key, to, f" ({run.result})" if to == lifecycle.COMPLETED else "")
    return run


#: How bad a result is: overriding with a milder one than the cases say hides failures.
_SEVERITY = {lifecycle.SKIPPED: 0, lifecycle.PASSED: 0, lifecycle.FAILED: 1, lifecycle.ERROR: 2}
OVERRIDE_LABEL = "result_override"


def _override_result(run: Run, *, result: str, derived: str, force: bool, actor: str | None) -> None:
    """Allow a result the cases do not give only by force when it is milder; note it on the run."""
    counts = f"{run.failed} failed, {run.errors} errors"
    if _SEVERITY[result] < _SEVERITY[derived] and not force:
        raise Conflict(
            f"run '{run.key}' has {counts}, so its result is {derived}; "
            f"recording {result} needs force (--force), which is noted on the run"
        )
    note = f"{result} set by {actor or 'hand'} over {derived} ({counts})"
    run.labels = {**(run.labels or {}), OVERRIDE_LABEL: note}


def record_results(db: Session, *, run: Run, results: Sequence[NewResult]) -> None:
    """Add case results to a run that has not finished, in one batch, updating its counters."""
    if run.status in lifecycle.TERMINAL:
        raise Conflict(f"run '{run.key}' is already {run.status}; results cannot be added")
    write_results(db, run_id=run.id, workspace_id=run.workspace_id, results=results, now=utcnow())
    db.refresh(run)


def totals_of(run: Run) -> lifecycle.Totals:
    return lifecycle.Totals(
        tests=run.tests, passed=run.passed, failed=run.failed, errors=run.errors,
        skipped=run.skipped, flaky=run.flaky, infra_faults=run.infra_faults,
    )
