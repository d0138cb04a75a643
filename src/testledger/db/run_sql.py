"""Runs on a Core connection (or a session's): workspaces and pipelines made on first use, a stored
pipeline's run created pending, started, beating and finished, an ingested run opened and completed.

An executor moves its run along with these (`services.execution`) and an ingest writes its run with
them (`services.ingest`), so `testledger run KEY` and `testledger ingest` neither import nor map nor
configure the ORM, and compile a few Core statements instead of ORM queries (issue 10: those were a
third of these commands' own start). The rules are the ones every path shares (`lifecycle`: legal
transitions, the derived result; `records` uses the same checks, and these functions, for the runs it
moves as ORM objects: by hand, cancelled, repaired).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, text, update

from testledger import keys, lifecycle
from testledger.db import reads
from testledger.db.bulk import insert_if_absent
from testledger.db.driver_sql import DriverSql
from testledger.db.engine import connection_of
from testledger.db.ids import uuid7
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

_RUN = reads.runs.c
_WORKSPACE, _PIPELINE = reads.workspaces.c, reads.pipelines.c
_COUNTERS = (_RUN.tests, _RUN.passed, _RUN.failed, _RUN.errors, _RUN.skipped, _RUN.flaky, _RUN.infra_faults)

#: Widths of the run fields that callers pass (PostgreSQL enforces them, SQLite would not).
FIELD_LIMITS = {"revision": 64, "branch": 255, "actor": 255}


def check_lengths(**values: str | None) -> None:
    """Refuse a run field longer than its column on every store, not only where PostgreSQL checks."""
    for field, value in values.items():
        limit = FIELD_LIMITS[field]
        if value is not None and len(value) > limit:
            raise Invalid(f"{field} is {len(value)} characters long; at most {limit} are allowed (shorten it)")


def checked_environment(trigger: str, environment: str, allowed: Sequence[str]) -> str:
    if trigger not in lifecycle.TRIGGERS:
        raise Invalid(f"unknown trigger '{trigger}' (expected one of {', '.join(lifecycle.TRIGGERS)})")
    return lifecycle.normalise_environment(environment, list(allowed))


def ensure_workspace_id(db: Session | Connection, *, key: str, name: str | None = None) -> int:
    """The id of the workspace with this key, created on first use (concurrent writers: the first one wins)."""
    conn = connection_of(db)
    query = select(_WORKSPACE.id).where(_WORKSPACE.key == key)
    found = conn.scalar(query)
    if found is None:
        values = {"key": keys.validate_workspace_key(key), "name": name or key, "run_seq": 0, "created_at": utcnow()}
        insert_if_absent(conn, reads.workspaces, values, keys=["key"])
        found = conn.execute(query).scalar_one()
    return int(found)


def ensure_pipeline(
    db: Session | Connection, *, workspace_id: int, key: str, name: str | None = None
) -> tuple[uuid.UUID, int]:
    """The id and current version of the pipeline with this key; created (version 0, no cases) when a
    run names an unknown one, as `testledger ingest --pipeline` and `runs start --pipeline` do for
    CI-only pipelines."""
    conn = connection_of(db)
    query = select(_PIPELINE.id, _PIPELINE.version).where(_PIPELINE.workspace_id == workspace_id, _PIPELINE.key == key)
    row = conn.execute(query).one_or_none()
    if row is None:
        now = utcnow()
        values = {
            "id": uuid7(), "workspace_id": workspace_id, "key": keys.validate_pipeline_key(key), "name": name or key,
            "version": 0, "parallelism": 1, "retries": 0, "fail_fast": False, "created_at": now, "updated_at": now,
        }
        insert_if_absent(conn, reads.pipelines, values, keys=["workspace_id", "key"])
        row = conn.execute(query).one()
    return row.id, int(row.version)


def next_run_number(db: Session | Connection, *, workspace_id: int) -> int:
    """Hand out the next run number of a workspace atomically (the row lock serialises writers)."""
    return int(
        connection_of(db).execute(
            text("UPDATE workspaces SET run_seq = run_seq + 1 WHERE id = :id RETURNING run_seq"),
            {"id": workspace_id},
        ).scalar_one()
    )


def next_result_index(db: Session | Connection, *, run_id: uuid.UUID) -> int:
    """The index the next result of a run gets (0 for a run without results)."""
    results = reads.case_results.c
    last = connection_of(db).scalar(select(func.coalesce(func.max(results.idx), -1)).where(results.run_id == run_id))
    return int(last if last is not None else -1) + 1


def new_run(
    *, workspace_id: int, key: str, now: datetime, pipeline_id: uuid.UUID | None, pipeline_version: int | None,
    started: bool, **given: Any,
) -> dict[str, Any]:
    """A new run's columns: `pending`, or `running` from `now` when `started`."""
    return {
        "id": uuid7(), "key": key, "workspace_id": workspace_id,
        "test_definition_id": pipeline_id, "pipeline_version": pipeline_version,
        "status": lifecycle.RUNNING if started else lifecycle.PENDING, "created_at": now,
        "started_at": now if started else None, "heartbeat_at": now if started else None,
        "cancel_requested": False, "tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "flaky": 0,
        "infra_faults": 0, **given,
    }


@dataclass(frozen=True, slots=True)
class RunRef:
    """What a writer needs of a run it holds in this transaction (no ORM object to keep in step)."""

    id: uuid.UUID
    key: str
    workspace_id: int
    status: str
    #: The columns the run was inserted with, when this transaction made it (`complete_reported_run` needs them).
    row: dict[str, Any] | None = None


def start_reported_run(
    db: Session | Connection, *, workspace: str, actor: str, environment: str, allowed_environments: Sequence[str],
    pipeline_key: str, trigger: str, executor: str, revision: str | None = None, branch: str | None = None,
    build_url: str | None = None, labels: dict[str, str] | None = None,
) -> RunRef:
    """`create_run(started=True)` for the ingest path in two driver-level statements (the run number
    with the workspace and pipeline, then the insert): a CI fleet sends many small reports, so this
    fixed cost decides their speed."""
    check_lengths(revision=revision, branch=branch, actor=actor)
    env = checked_environment(trigger, environment, allowed_environments)
    sql = DriverSql.of(db)
    found = sql.execute(sql.next_run, (workspace, pipeline_key, pipeline_key)).fetchone()
    if found is None or found[2] is None:  # first run of this workspace or pipeline: create them
        workspace_id = ensure_workspace_id(db, key=workspace)
        pipeline_id, version = ensure_pipeline(db, workspace_id=workspace_id, key=pipeline_key)
        number = found[1] if found is not None else next_run_number(db, workspace_id=workspace_id)
    else:
        workspace_id, number, pipeline_id, version = found[0], found[1], sql.uuid_out(found[2]), found[3]
    values = _insert_run(
        sql, workspace=workspace, workspace_id=workspace_id, number=number, pipeline_key=pipeline_key,
        pipeline_id=pipeline_id, pipeline_version=version, started=True, environment=env, triggered_by=actor,
        trigger=trigger, parameters=None, revision=revision, branch=branch, build_url=build_url, labels=labels,
        executor=executor,
    )
    return RunRef(values["id"], values["key"], workspace_id, values["status"], values)


def _insert_run(
    sql: DriverSql, *, workspace: str, workspace_id: int, number: int, pipeline_key: str, pipeline_id: uuid.UUID,
    pipeline_version: int, started: bool, **given: Any,
) -> dict[str, Any]:
    """The run's row, numbered `number` in its workspace; the insert goes with the next statement (PostgreSQL)."""
    now = utcnow()
    values = new_run(workspace_id=workspace_id, key=keys.run_key(workspace, now, number), now=now,
                     pipeline_id=pipeline_id, pipeline_version=pipeline_version, started=started, **given)
    sql.later(sql.insert_run, sql.run_row(values))
    logger.info("run %s created (pipeline %s, %s, by %s)", values["key"], pipeline_key, values["environment"],
                values["triggered_by"])
    return values


def complete_reported_run(db: Session | Connection, *, run: RunRef, counted: lifecycle.Totals) -> None:
    """Complete a run this transaction made (`start_reported_run`) in one statement: the counters its
    writer kept in memory (`counted`, not yet in the row), status, result and duration.
    The run's duration is the test time its reports state (the sum over its top-level results), not
    how long ingesting took."""
    if run.row is None:
        raise ValueError("complete_reported_run completes runs made by start_reported_run in this transaction")
    lifecycle.check_transition(run.key, run.status, lifecycle.COMPLETED)
    result = lifecycle.derive_result(counted)
    sql = DriverSql.of(db)
    completed_at = utcnow()
    params = (
        lifecycle.COMPLETED, result, sql.datetime_in(completed_at), sql.uuid_in(run.id), counted.tests,
        counted.passed, counted.failed, counted.errors, counted.skipped, counted.flaky, counted.infra_faults,
        sql.uuid_in(run.id),
    )
    # A run with results is queued for the analytics rollups, folded later (`testledger.analytics.fold`): on
    # PostgreSQL in the completing statement itself, which nothing waits for: it goes with the COMMIT
    # (`DriverSql.later`).
    if counted.tests and sql.complete_and_enqueue:
        sql.later(sql.complete_and_enqueue, params)
    else:
        sql.later(sql.complete_run, params)
        if counted.tests:
            sql.later(sql.enqueue, (sql.uuid_in(run.id),))
    logger.info("run %s %s (%s)", run.key, lifecycle.COMPLETED, result)


def create_pending_run(
    conn: Connection, *, workspace: str, pipeline_key: str, pipeline_version: int, actor: str, environment: str,
    allowed_environments: Sequence[str], trigger: str, parameters: dict[str, Any] | None, revision: str | None,
    branch: str | None, build_url: str | None,
) -> str:
    """A new `pending` run of a stored pipeline (its workspace and pipeline exist); returns its key.
    The run number, the workspace's and the pipeline's ids come from one statement, the row from a
    second (on PostgreSQL it goes with the next round trip)."""
    check_lengths(revision=revision, branch=branch, actor=actor)
    env = checked_environment(trigger, environment, allowed_environments)
    sql = DriverSql.of(conn)
    found = sql.execute(sql.next_run, (workspace, pipeline_key, pipeline_key)).fetchone()
    if found is None or found[2] is None:  # deleted since the caller read it
        raise NotFound(f"pipeline '{pipeline_key}' not found in workspace {workspace}")
    values = _insert_run(
        sql, workspace=workspace, workspace_id=found[0], number=found[1], pipeline_key=pipeline_key,
        pipeline_id=sql.uuid_out(found[2]), pipeline_version=pipeline_version, started=False, environment=env,
        triggered_by=actor, trigger=trigger, parameters=parameters, revision=revision, branch=branch,
        build_url=build_url,
    )
    return str(values["key"])


def start_run(conn: Connection, *, key: str, executor: str | None = None) -> None:
    """pending -> running, owned by `executor` when one is named (an ingest into a pending run names none)."""
    now = utcnow()
    values: dict[str, Any] = {"status": lifecycle.RUNNING, "started_at": now, "heartbeat_at": now}
    if executor is not None:
        values["executor"] = executor
    moved = conn.execute(
        update(reads.runs).where(_RUN.key == key, _RUN.status == lifecycle.PENDING).values(**values)
    ).rowcount
    if moved != 1:
        status = conn.scalar(select(_RUN.status).where(_RUN.key == key))
        if status is None:
            raise NotFound(f"run '{key}' not found")
        lifecycle.check_transition(key, status, lifecycle.RUNNING)
        raise Conflict(f"run '{key}' cannot start: it is {status}")  # a concurrent start won
    logger.info("run %s %s", key, lifecycle.RUNNING)


@dataclass(frozen=True, slots=True)
class HeldRun:
    """A run an executor holds, as it reads it at a sync (its row locked for the transaction)."""

    id: uuid.UUID
    workspace_id: int
    status: str
    cancel_requested: bool


def hold_run(conn: Connection, *, key: str) -> HeldRun:
    """The run's row, locked until the transaction ends (PostgreSQL; a SQLite writer holds the store)."""
    row = conn.execute(
        select(_RUN.id, _RUN.workspace_id, _RUN.status, _RUN.cancel_requested).where(_RUN.key == key).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"run '{key}' not found")
    return HeldRun(row.id, row.workspace_id, row.status, bool(row.cancel_requested))


def beat(conn: Connection, *, run: HeldRun, now: datetime) -> None:
    conn.execute(update(reads.runs).where(_RUN.id == run.id).values(heartbeat_at=now))


def end_run(conn: Connection, *, key: str, status: str, error: str | None = None) -> bool:
    """End a running or pending run: completed (with the result its counters give), cancelled or timeout;
    False when it had already ended (elsewhere: repaired as stuck, cancelled while pending)."""
    row = conn.execute(
        select(_RUN.id, _RUN.status, _RUN.started_at, *_COUNTERS).where(_RUN.key == key).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"run '{key}' not found")
    if row.status in lifecycle.TERMINAL:
        return False
    lifecycle.check_transition(key, row.status, status)
    now = utcnow()
    values: dict[str, Any] = {
        "status": status, "completed_at": now, "duration_ms": lifecycle.elapsed_ms(row.started_at, now),
    }
    if error is not None:
        values["error"] = error
    if status == lifecycle.COMPLETED:
        totals = lifecycle.Totals(row.tests, row.passed, row.failed, row.errors, row.skipped, row.flaky,
                                  row.infra_faults)
        values["result"] = lifecycle.derive_result(totals, run_error=error is not None)
    conn.execute(update(reads.runs).where(_RUN.id == row.id).values(**values))
    if row.tests:  # queued for the analytics rollups in the transaction that ends it (as `records.transition`)
        sql = DriverSql.of(conn)
        sql.later(sql.enqueue, (sql.uuid_in(row.id),))
    logger.info("run %s %s%s", key, status, f" ({values['result']})" if "result" in values else "")
    return True
