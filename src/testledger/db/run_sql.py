"""A run of a stored pipeline on a Core connection: created pending, started, beating, finished.

An executor moves its run along with these (`services.execution`), so `testledger run KEY` neither
imports nor maps nor configures the ORM, and compiles a few Core statements instead of ORM queries
(issue 10: those were a third of the command's own start). The rules are the ones every path shares
(`lifecycle`: legal transitions, the derived result; `records` uses the same checks for the runs it
moves as ORM objects: by hand, cancelled, repaired, ingested).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from testledger import keys, lifecycle
from testledger.db import reads
from testledger.db.driver_sql import DriverSql
from testledger.db.ids import uuid7
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid, NotFound

logger = logging.getLogger(__name__)

_RUN = reads.runs.c
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
    sql = DriverSql.on(conn)
    found = sql.execute(sql.next_run, (workspace, pipeline_key, pipeline_key)).fetchone()
    if found is None or found[2] is None:  # deleted since the caller read it
        raise NotFound(f"pipeline '{pipeline_key}' not found in workspace {workspace}")
    now = utcnow()
    values = new_run(
        workspace_id=found[0], key=keys.run_key(workspace, now, found[1]), now=now, pipeline_id=sql.uuid_out(found[2]),
        pipeline_version=pipeline_version, started=False, environment=env, triggered_by=actor, trigger=trigger,
        parameters=parameters, revision=revision, branch=branch, build_url=build_url,
    )
    sql.later(sql.insert_run, sql.run_row(values))
    logger.info("run %s created (pipeline %s, %s, by %s)", values["key"], pipeline_key, env, actor)
    return str(values["key"])


def start_run(conn: Connection, *, key: str, executor: str) -> None:
    """pending -> running, owned by `executor`."""
    now = utcnow()
    moved = conn.execute(
        update(reads.runs).where(_RUN.key == key, _RUN.status == lifecycle.PENDING)
        .values(status=lifecycle.RUNNING, started_at=now, heartbeat_at=now, executor=executor)
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
        sql = DriverSql.on(conn)
        sql.later(sql.enqueue, (sql.uuid_in(row.id),))
    logger.info("run %s %s%s", key, status, f" ({values['result']})" if "result" in values else "")
    return True
