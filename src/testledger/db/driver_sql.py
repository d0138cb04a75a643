"""An ingested run's bookkeeping as driver-level statements: run number, run row, report row, completion.

A CI fleet sends many small reports, so what each run costs beside its results decides their speed.
SQLAlchemy's execution costs ~0.1 ms a statement on this path (more than SQLite takes to run it), so
these few statements go straight to the driver on the session's connection, inside its transaction,
with the values adapted here the way the ORM's column types store them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:  # read paths (`runs list`) import this module without the ORM
    from sqlalchemy.orm import Session

from testledger.db.rows import json_text, sqlite_datetime

RUN_COLUMNS = (
    "id", "key", "workspace_id", "test_definition_id", "pipeline_version", "status", "created_at", "started_at",
    "heartbeat_at", "cancel_requested", "tests", "passed", "failed", "errors", "skipped", "flaky", "infra_faults",
    "environment", "triggered_by", "trigger", "parameters", "revision", "branch", "build_url", "labels", "executor",
)
_RUN_JSON = frozenset({"parameters", "labels"})
_RUN_TIMES = frozenset({"created_at", "started_at", "heartbeat_at"})
REPORT_COLUMNS = (
    "run_id", "name", "format", "dialect", "sha256", "bytes", "cases", "entries", "suites", "notes", "ingested_at",
)
_REPORT_JSON = frozenset({"entries", "suites", "notes"})
_COUNTERS = ("tests", "passed", "failed", "errors", "skipped", "flaky", "infra_faults")


@dataclass(frozen=True, slots=True)
class _Statements:
    next_run: str
    insert_run: str
    insert_report: str
    complete_run: str
    enqueue: str
    #: The completion and the queue insert in one statement (PostgreSQL: one round trip less a run).
    complete_and_enqueue: str | None


def _statements(mark: str, json_mark: str, *, data_modifying_ctes: bool) -> _Statements:
    def marks(columns: tuple[str, ...], json: frozenset[str]) -> str:
        return ", ".join(json_mark if c in json else mark for c in columns)

    def quoted(columns: tuple[str, ...]) -> str:
        return ", ".join(f'"{c}"' for c in columns)  # `key`, `trigger`: words some SQL reserves

    pipeline = f"FROM pipelines p WHERE p.workspace_id = workspaces.id AND p.key = {mark}"
    complete_run = (
        f"UPDATE test_runs SET status = {mark}, result = {mark}, completed_at = {mark}, duration_ms = ("
        "SELECT CAST(round(coalesce(sum(r.duration_ms), 0)) AS BIGINT) FROM case_results r "
        f"WHERE r.run_id = {mark} AND r.parent_idx IS NULL), "
        + ", ".join(f"{c} = {c} + {mark}" for c in _COUNTERS)
        + f" WHERE id = {mark}"
    )
    return _Statements(
        # The run number, with the workspace and pipeline it needs: one statement, one round trip.
        next_run=(
            f"UPDATE workspaces SET run_seq = run_seq + 1 WHERE key = {mark} "
            f"RETURNING id, run_seq, (SELECT p.id {pipeline}), (SELECT p.version {pipeline})"
        ),
        insert_run=f"INSERT INTO test_runs ({quoted(RUN_COLUMNS)}) VALUES ({marks(RUN_COLUMNS, _RUN_JSON)})",
        insert_report=(
            f"INSERT INTO report_files ({quoted(REPORT_COLUMNS)}) VALUES ({marks(REPORT_COLUMNS, _REPORT_JSON)})"
        ),
        complete_run=complete_run,
        # A finished run queued for the analytics fold (`testledger.analytics.fold`).
        enqueue=f"INSERT INTO analytics_queue (run_id) VALUES ({mark})",
        complete_and_enqueue=(
            f"WITH done AS ({complete_run} RETURNING id) INSERT INTO analytics_queue (run_id) SELECT id FROM done"
            if data_modifying_ctes else None
        ),
    )


_SQLITE = _statements("?", "?", data_modifying_ctes=False)
_KEPT = "testledger.driver_sql"
_POSTGRESQL = _statements("%s", "%s::jsonb", data_modifying_ctes=True)


#: Where a PostgreSQL connection keeps the statements `DriverSql.later` queued (`Connection.info`).
_PENDING = "testledger.pending"
#: A queued statement: its SQL and its parameters.
Queued = tuple[str, tuple[Any, ...]]


class DriverSql:
    """The statements for the session's dialect, run on its driver connection (in its transaction).

    On PostgreSQL a round trip to the server costs more than most of these statements (~0.4 ms on
    this machine's loopback), so each one that needs no answer (an insert) waits, queued by `later`,
    and goes with the next statement that does, in one pipeline (the last ones with the COMMIT).
    Nothing queued is lost or reordered: a statement that SQLAlchemy runs on the connection, its
    savepoints and its commit send the queue first (`_send_first`), a rollback drops what it undoes,
    and code that uses the driver connection itself calls `send_pending` (bulk writes, raw reads) or
    `execute_after_pending` (look-ups).
    """

    __slots__ = ("complete_and_enqueue", "complete_run", "conn", "enqueue", "insert_report", "insert_run",
                 "next_run", "pending", "sqlite")

    def __init__(self, conn: Any, *, sqlite: bool, pending: list[Queued] | None = None) -> None:
        self.conn, self.sqlite = conn, sqlite
        self.pending = pending if pending is not None else []
        s = _SQLITE if sqlite else _POSTGRESQL
        self.next_run, self.insert_run, self.insert_report, self.complete_run, self.enqueue = (
            s.next_run, s.insert_run, s.insert_report, s.complete_run, s.enqueue)
        self.complete_and_enqueue = s.complete_and_enqueue

    @classmethod
    def of(cls, db: Session | Connection) -> DriverSql:
        """The statements on a Core connection, in its transaction, or on a session's connection, kept for the
        rest of its transaction (asking the session for its connection costs more than a SQLite statement)."""
        if isinstance(db, Connection):
            sqlite = db.dialect.name == "sqlite"
            return cls(db.connection.driver_connection, sqlite=sqlite,
                       pending=None if sqlite else db.info.setdefault(_PENDING, []))
        transaction = db.get_transaction()
        kept = db.info.get(_KEPT)
        if kept is not None and transaction is not None and kept[0] is transaction:
            if db.get_nested_transaction() is not None:
                db.connection()  # a savepoint the session began lazily: on the connection before these statements
            return kept[1]  # type: ignore[no-any-return]
        connection = db.connection()
        sqlite = connection.dialect.name == "sqlite"
        sql = cls(connection.connection.driver_connection, sqlite=sqlite,
                  pending=None if sqlite else connection.info.setdefault(_PENDING, []))
        db.info[_KEPT] = (db.get_transaction(), sql)
        return sql

    def execute(self, statement: str, params: tuple[Any, ...]) -> Any:
        """Run `statement` now and return its cursor (on PostgreSQL with what `later` queued before it)."""
        if self.sqlite:
            return self.conn.execute(statement, params)
        return _pipelined(self.conn, self.pending, statement, params)

    def later(self, statement: str, params: tuple[Any, ...]) -> None:
        """Run `statement`, whose answer nobody reads, with the connection's next round trip."""
        if self.sqlite:  # in process: nothing to save
            self.conn.execute(statement, params)
        else:
            self.pending.append((statement, params))

    # -- values as the ORM's column types store them -----------------------------------------
    def uuid_in(self, value: uuid.UUID | None) -> Any:
        return value.hex if self.sqlite and value is not None else value

    def uuid_out(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)

    def datetime_in(self, value: datetime | None) -> Any:
        return sqlite_datetime(value) if self.sqlite else value

    def run_row(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """The run's columns in `RUN_COLUMNS` order."""
        row = []
        for column in RUN_COLUMNS:
            value: Any = values.get(column)
            if column in _RUN_JSON:
                value = json_text(value)
            elif column in _RUN_TIMES:
                value = self.datetime_in(value)
            elif column in ("id", "test_definition_id"):
                value = self.uuid_in(value)
            elif column == "cancel_requested" and self.sqlite:
                value = int(value)
            row.append(value)
        return tuple(row)

    def report_row(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """A report file's columns in `REPORT_COLUMNS` order."""
        return tuple(
            json_text(values.get(c)) if c in _REPORT_JSON
            else self.datetime_in(values[c]) if c == "ingested_at"
            else self.uuid_in(values[c]) if c == "run_id"
            else values.get(c)
            for c in REPORT_COLUMNS
        )


def _pipelined(driver: Any, pending: list[Queued], statement: str | None, params: tuple[Any, ...] = (), *,
               commit: bool = False) -> Any:
    """Send what is queued, then `statement` (if any) or the COMMIT, in one PostgreSQL pipeline: one
    round trip.

    A pipeline costs ~0.1 ms more than a plain statement (entering and leaving its mode), so it is
    used only when something waits in the queue."""
    if not pending:
        return driver.execute(statement, params) if statement is not None else None
    with driver.pipeline():
        for queued, queued_params in pending:
            driver.execute(queued, queued_params)
        pending.clear()
        if commit:
            # As a statement: `driver.commit()` would add a Sync of its own (a round trip) before the pipeline's.
            # The server's answer ends the transaction for psycopg too (its own commit then sends nothing).
            driver.execute("COMMIT")
            return None
        return driver.execute(statement, params) if statement is not None else None


def later_on(connection: Connection, statement: str, params: tuple[Any, ...]) -> None:
    """`DriverSql.later` for code that holds the SQLAlchemy connection (PostgreSQL)."""
    connection.info.setdefault(_PENDING, []).append((statement, params))


def send_pending(connection: Connection) -> None:
    """Send the statements `DriverSql.later` queued on this connection, before using its driver connection
    directly (COPY cannot go in a pipeline)."""
    pending = connection.info.get(_PENDING)
    if pending:
        _pipelined(connection.connection.driver_connection, pending, None)


def execute_after_pending(connection: Connection, statement: str, params: tuple[Any, ...]) -> Any:
    """Run a PostgreSQL statement on the driver connection with what is queued before it (one round trip)."""
    return _pipelined(connection.connection.driver_connection, connection.info.setdefault(_PENDING, []), statement,
                      params)


def _queue(conn: Connection) -> list[Queued] | None:
    """The statements waiting on `conn`; none on a connection that was invalidated (the pool cleared them with
    it, and asking an invalidated connection for its `info` would try to reconnect)."""
    if conn.invalidated or conn.closed:
        return None
    return conn.info.get(_PENDING)


@event.listens_for(Engine, "before_cursor_execute")
def _send_first(conn: Connection, *_: Any) -> None:
    """Whatever SQLAlchemy runs on a connection comes after what is queued on it (order kept)."""
    if _queue(conn):
        send_pending(conn)


@event.listens_for(Engine, "commit")
def _send_with_commit(conn: Connection) -> None:
    """What is queued goes with the COMMIT itself, in one round trip (SQLAlchemy's own commit then finds the
    transaction ended: psycopg sends nothing for it). A failed COMMIT raises here, as the driver's error."""
    pending = _queue(conn)
    if pending:
        _pipelined(conn.connection.driver_connection, pending, None, commit=True)


@event.listens_for(Engine, "savepoint")
def _send_before_savepoint(conn: Connection, _name: str) -> None:
    """What was queued before a savepoint belongs before it: its rollback must not take it away."""
    if _queue(conn):
        send_pending(conn)


@event.listens_for(Engine, "rollback_savepoint")
def _drop_on_rollback_to_savepoint(conn: Connection, _name: str, _context: Any) -> None:
    """What was queued since the savepoint (`_send_before_savepoint` sent the rest) goes with it."""
    pending = _queue(conn)
    if pending:
        pending.clear()


@event.listens_for(Engine, "rollback")
def _drop_on_rollback(conn: Connection) -> None:
    """A rolled-back transaction takes its queued statements with it."""
    pending = _queue(conn)
    if pending:
        pending.clear()
