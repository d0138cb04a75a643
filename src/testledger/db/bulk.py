"""Fast bulk writes of case results: raw `executemany` on SQLite; on PostgreSQL, a small batch as one jsonb
document sent with the transaction's next round trip, a large one by binary COPY.

This is the one module where SQL differs by dialect. The ORM costs 20x over raw inserts on this
path (ORM `add_all` 17k rows/s against 330k for raw tuples on this machine), so rows travel as
tuples straight to the driver.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from testledger.db.driver_sql import execute_after_pending, later_on, send_pending
from testledger.db.engine import connection_of
from testledger.db.rows import (
    CASE_COLUMNS,
    LEAN_COLUMNS,
    RESULT_COLUMNS,
    Batch,
    NewResult,
    ResultBuffer,
    RowBuilder,
    attempt_count,
    json_text,
)
from testledger.lifecycle import Totals
from testledger.textlimits import TextLimits

if TYPE_CHECKING:  # a run's bookkeeping writes results on a Core connection, without the ORM
    from sqlalchemy.orm import Session

_SQLITE_RESULTS = (
    f"INSERT INTO case_results ({', '.join(RESULT_COLUMNS)}) VALUES ({', '.join('?' * len(RESULT_COLUMNS))})"
)
# Most results are a plain pass: no text, no JSON, no times, no parent. sqlite3 binds each parameter in turn
# (~0.3 us each), so those go by a statement that names 6 columns instead of 21: 0.39 against 1.05 ms
# for 100 rows here. The columns left out are NULL or take the value written in the statement.
_SQLITE_LEAN_RESULTS = (
    f"INSERT INTO case_results ({', '.join(LEAN_COLUMNS)}, attempt_count) "
    f"VALUES ({', '.join('?' * len(LEAN_COLUMNS))}, 1)"
)
_SQLITE_CASES = (
    f"INSERT OR IGNORE INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({', '.join('?' * len(CASE_COLUMNS))})"
)
# New cases travel by COPY into a session-local table, then one INSERT ... ON CONFLICT moves them:
# COPY cannot skip conflicts itself, and array parameters (unnest) cost ~13 us a case to encode.
_PG_CASES_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS testledger_new_cases "
    "(LIKE cases INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_PG_CASES_COPY = f"COPY testledger_new_cases ({', '.join(CASE_COLUMNS)}) FROM STDIN"
_PG_CASES_MOVE = (
    f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) SELECT {', '.join(CASE_COLUMNS)} FROM testledger_new_cases "
    "ON CONFLICT (id) DO NOTHING; TRUNCATE testledger_new_cases"
)
_SQLITE_CASE_IDS = "SELECT id FROM cases LIMIT ?"  # the primary key's index alone
_SQLITE_STORED_IDS = "SELECT id FROM cases WHERE id IN (SELECT value FROM json_each(?))"
# A join on the unnested ids, not `id = ANY(...)`: once psycopg prepares the statement, PostgreSQL's generic
# plan for ANY chose a sequential scan of `cases` while its statistics still said it was small (9 ms a
# 100-case run at 20k tests, growing with the table); the join probes the primary key for each id.
_PG_STORED_IDS = "SELECT c.id FROM unnest(%s::int8[]) AS u(id) JOIN cases c ON c.id = u.id"
# Results go by binary COPY: against text, 100 rows took 0.3-0.6 ms less client CPU and 0.8-2 ms less
# wall (the server parses no text). Binary needs each column's type: built-in types, whose oids never change
# (tests/core/test_store.py checks them against the table).
PG_RESULT_TYPES = (
    "uuid", "int4", "int4", "int8", "varchar", "float8", "text", "varchar", "varchar", "text", "text", "text",
    "jsonb", "int4", "jsonb", "bool", "varchar", "timestamptz", "timestamptz", "text", "jsonb",
)
_PG_RESULTS_COPY = f"COPY case_results ({', '.join(RESULT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
# A batch of up to this many results (a CI fleet's small reports) goes as one jsonb document instead, queued
# with its cases for the transaction's next round trip (`DriverSql.later`): COPY costs two round trips of its
# own and the known-case look-up a third. 100 results: 0.8-1.0 ms of server time against 1.3-1.7 ms for
# COPY's, and 0.3 ms of `json.dumps`. Above `_PG_JSON_MAX_CHARS` of JSON (long outputs) COPY streams instead.
_PG_RESULTS_BY_JSON = 1000
_PG_JSON_MAX_CHARS = 8 << 20
_PG_RESULTS_FROM_JSON = (
    f"INSERT INTO case_results ({', '.join(RESULT_COLUMNS)}) SELECT %s, " + ", ".join(
        f"e->{n}" if kind == "jsonb" else f"e->>{n}" if kind in ("text", "varchar") else f"(e->>{n})::{kind}"
        for n, kind in enumerate(PG_RESULT_TYPES[1:]))
    + " FROM jsonb_array_elements(%s::jsonb) e"
)
# Up to this many new cases go as one JSON document in one statement: 0.8-1.1 ms of client CPU for 100
# cases against 3.5 ms for a pipelined executemany (psycopg's cost per statement), and no staging table.
# As jsonb, parsed once: 2.1 ms of server time for 100 cases against 3.6 ms as json (whose ->> parses
# the element again for each field).
_PG_CASES_BY_JSON = 500
_PG_CASES_FROM_JSON = (
    f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) "
    "SELECT (e->>0)::int8, (e->>1)::int, e->>2, e->>3, e->>4, e->>5, e->>6, e->>7, %s "
    "FROM jsonb_array_elements(%s::jsonb) e ON CONFLICT (id) DO NOTHING"
)
_COUNTERS = text(
    "UPDATE test_runs SET tests = tests + :tests, passed = passed + :passed, failed = failed + :failed, "
    "errors = errors + :errors, skipped = skipped + :skipped, flaky = flaky + :flaky, "
    "infra_faults = infra_faults + :infra WHERE id = :run_id"
)

class ResultWriter(ResultBuffer):
    """Writes results of one run in batches into the session's transaction, with their cases and
    the run's counters. Call `add` per result and `flush` before the transaction commits.

    With `defer_counters` (a run this transaction made, completed or counted once at the end) the
    counters wait in `pending` instead of an UPDATE per batch; the caller writes them
    (`write_counters`, or with the run's completion)."""

    def __init__(
        self, session: Session | Connection, *, run_id: uuid.UUID, workspace_id: int, now: datetime,
        batch: int = 5000,
        defer_counters: bool = False,
    ) -> None:
        super().__init__(batch)
        self.session = session
        #: Everything this writer added to the run's counters; `pending`: the part not written yet.
        self.counters = Totals()
        self.pending = Totals()
        self.defer_counters = defer_counters
        self.sqlite = connection_of(session).dialect.name == "sqlite"
        # Cases are sent once per writer (one transaction); whether they are stored already is the
        # database's to say (INSERT OR IGNORE, ON CONFLICT DO NOTHING). A cache that outlives the
        # transaction goes stale when another connection deletes cases (a foreign-key error later).
        self.builder = RowBuilder(run_id=run_id, workspace_id=workspace_id, now=now, sqlite=self.sqlite)

    def discard(self) -> None:
        """Forget what is buffered, after the caller rolled back to a savepoint: the cases written
        since may be gone too, so every case is sent again (the insert skips those that exist)."""
        super().discard()
        self.builder.forget_known()

    def _write(self, results: list[NewResult]) -> None:
        self.write_batch(self.builder.rows(results))

    def write_batch(self, batch: Batch) -> None:
        """Put rows built here or elsewhere (a parsing process) into the transaction."""
        conn = connection_of(self.session)
        if self.sqlite:
            cases = unstored_cases(conn, batch.cases, sqlite=True)
            raw: Any = conn.connection.driver_connection
            if cases:
                raw.executemany(_SQLITE_CASES, cases)
            if batch.lean:
                raw.executemany(_SQLITE_LEAN_RESULTS, batch.lean)
            if batch.rows:
                raw.executemany(_SQLITE_RESULTS, batch.rows)
        elif not _queue_postgresql(conn, batch.cases, batch.rows):
            _copy_postgresql(conn, unstored_cases(conn, batch.cases, sqlite=False), batch.rows)
        self.count(batch.counts)

    def count(self, delta: Totals) -> None:
        """Add `delta` to the run's counters (now, or with the others when they are deferred)."""
        self.counters.add(delta)
        self.pending.add(delta)
        if not self.defer_counters:
            self.write_counters()

    def write_counters(self) -> None:
        """Write what waits in `pending` to the run's row."""
        add_to_counters(self.session, run_id=self.builder.run, delta=self.pending)
        self.pending = Totals()


#: The most case ids `stored_case_ids` reads (~15 MB in this process and as much in the parse process).
STORED_IDS_LIMIT = 250_000


def stored_case_ids(conn: Any, *, limit: int = STORED_IDS_LIMIT) -> frozenset[int]:
    """Every case id a SQLite store holds, for a large ingest's parse process to leave out the rows of
    cases the store has (known tests: the common case), instead of building, sending and looking up
    each of them; empty when there are more than `limit` (then each batch looks its cases up).

    Read inside the writer's transaction, which on SQLite holds the write lock from its start: no case
    can be deleted before it commits, so the answer stays true for the whole ingest (the stale cache
    of issue 7 outlived its transaction). A report rolled back to its savepoint takes away only cases
    that were new, so not these."""
    raw: Any = conn.connection.driver_connection
    ids = [case_id for (case_id,) in raw.execute(_SQLITE_CASE_IDS, (limit + 1,))]
    return frozenset(ids) if len(ids) <= limit else frozenset()


def unstored_cases(conn: Any, cases: list[tuple[Any, ...]], *, sqlite: bool) -> list[tuple[Any, ...]]:
    """The case rows whose ids the store does not hold, by one indexed look-up of the batch's ids.

    A known test then costs a look-up, not an insert that conflicts. The answer is read inside the
    writer's transaction and kept for this batch only (a cache that outlived the transaction went
    stale when another connection deleted cases, issue 7); the inserts still skip a case another
    writer adds meanwhile.
    """
    if not cases:
        return cases
    ids = [case[0] for case in cases]
    raw: Any = conn.connection.driver_connection
    if sqlite:
        found = raw.execute(_SQLITE_STORED_IDS, (json.dumps(ids),)).fetchall()
    else:  # with the statements waiting on the connection (the run's row): one round trip
        # The ids as an array literal: psycopg's list dumper costs ~2 us an element here.
        found = execute_after_pending(conn, _PG_STORED_IDS, ("{" + ",".join(map(str, ids)) + "}",)).fetchall()
    stored = {case_id for (case_id,) in found}
    return [case for case in cases if case[0] not in stored] if stored else cases


def _queue_postgresql(conn: Any, cases: list[tuple[Any, ...]], rows: list[tuple[Any, ...]]) -> bool:
    """Queue a small batch's cases and results as two jsonb documents for the connection's next round trip
    (`DriverSql.later`: for an ingest, its COMMIT). False when the batch is too large for it (COPY then)."""
    if not rows or len(rows) > _PG_RESULTS_BY_JSON:
        return False
    try:
        # Each row but its run id (sent once); the times as ISO text. No NaN: JSON has none.
        results = json.dumps([row[1:] for row in rows], default=_iso, allow_nan=False, ensure_ascii=False,
                             separators=(",", ":"))
    except (ValueError, TypeError):  # a NaN or infinite duration, a value JSON cannot carry: COPY takes them
        return False
    if len(results) > _PG_JSON_MAX_CHARS:  # large texts stream better through COPY
        return False
    if cases:  # every case of the batch: one the store has is skipped by the conflict, not looked up first
        _queue_cases(conn, cases)
    later_on(conn, _PG_RESULTS_FROM_JSON, (rows[0][0], results))
    return True


def _queue_cases(conn: Any, cases: list[tuple[Any, ...]]) -> None:
    """Case rows as one jsonb document for the next round trip; they share their creation time (one
    `RowBuilder`), sent once."""
    later_on(conn, _PG_CASES_FROM_JSON, (cases[0][-1], json_text([case[:-1] for case in cases])))


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _copy_postgresql(conn: Any, cases: list[tuple[Any, ...]], rows: list[tuple[Any, ...]]) -> None:
    send_pending(conn)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        if 0 < len(cases) <= _PG_CASES_BY_JSON:
            # With the next round trip (the run's completion): results have no foreign key to their case
            # (migration 0010), so the cases may follow them within the transaction.
            _queue_cases(conn, cases)
        elif cases:
            cur.execute(_PG_CASES_STAGE)
            with cur.copy(_PG_CASES_COPY) as copy:
                for case in cases:
                    copy.write_row(case)
            cur.execute(_PG_CASES_MOVE)
        with cur.copy(_PG_RESULTS_COPY) as copy:
            copy.set_types(PG_RESULT_TYPES)
            for row in rows:
                copy.write_row(row)


#: What merging a rerun into a stored result changes (see `update_results`).
MERGED_COLUMNS = (
    "status", "duration_ms", "message", "error_type", "failure_category", "stack_trace", "stdout", "stderr",
    "properties", "attempts", "attempt_count", "flaky", "attachments",
)
_PG_MERGED_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS testledger_merged ON COMMIT DELETE ROWS AS "
    f"SELECT idx, {', '.join(MERGED_COLUMNS)} FROM case_results WITH NO DATA"
)
_PG_MERGED_COPY = f"COPY testledger_merged (idx, {', '.join(MERGED_COLUMNS)}) FROM STDIN"
_PG_MERGED_MOVE = (
    f"UPDATE case_results r SET {', '.join(f'{c} = m.{c}' for c in MERGED_COLUMNS)} "
    "FROM testledger_merged m WHERE r.run_id = %s AND r.idx = m.idx"
)
_SQLITE_MERGED = (
    f"UPDATE case_results SET {', '.join(f'{c} = ?' for c in MERGED_COLUMNS)} WHERE run_id = ? AND idx = ?"
)
_JSON_COLUMNS = frozenset({"properties", "attempts", "attachments"})


def update_results(
    session: Session | Connection, *, run_id: uuid.UUID, results: Sequence[NewResult], limits: TextLimits
) -> None:
    """Write merged results back over their stored rows, all at once (COPY and one UPDATE on PostgreSQL)."""
    if not results:
        return
    conn = connection_of(session)
    sqlite = conn.dialect.name == "sqlite"
    rows = []
    for r in results:
        limits.cap_result(r)
        values = [json_text(getattr(r, c)) if c in _JSON_COLUMNS else getattr(r, c) for c in MERGED_COLUMNS]
        values[MERGED_COLUMNS.index("attempt_count")] = attempt_count(r)
        rows.append((*values, run_id.hex, r.idx) if sqlite else (r.idx, *values))
    if sqlite:
        conn.exec_driver_sql(_SQLITE_MERGED, rows)
        return
    send_pending(conn)
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(_PG_MERGED_STAGE)
        with cur.copy(_PG_MERGED_COPY) as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(_PG_MERGED_MOVE, (run_id,))
        cur.execute("TRUNCATE testledger_merged")  # a second batch in this transaction starts empty


def add_to_counters(session: Session | Connection, *, run_id: str | uuid.UUID, delta: Totals) -> None:
    """Apply a change to a run's test counters (negative values undo a count)."""
    if not any(getattr(delta, name) for name in delta.__slots__):
        return
    conn = connection_of(session)
    if isinstance(run_id, uuid.UUID):
        run_id = run_id.hex if conn.dialect.name == "sqlite" else str(run_id)
    conn.execute(
        _COUNTERS,
        {
            "tests": delta.tests, "passed": delta.passed, "failed": delta.failed, "errors": delta.errors,
            "skipped": delta.skipped, "flaky": delta.flaky, "infra": delta.infra_faults, "run_id": run_id,
        },
    )


def write_results(
    session: Session | Connection, *, run_id: uuid.UUID, workspace_id: int, results: Sequence[NewResult], now: datetime
) -> Totals:
    """Write a batch of results at once; returns what was added to the run's counters."""
    writer = ResultWriter(session, run_id=run_id, workspace_id=workspace_id, now=now)
    for r in results:
        writer.add(r)
    writer.flush()
    return writer.counters


def insert_if_absent(
    session: Session | Connection, table: Any, values: dict[str, Any], *, keys: Sequence[str]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: first writer wins, concurrent writers don't fail."""
    if connection_of(session).dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=list(keys)))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=list(keys)))
