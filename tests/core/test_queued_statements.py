"""Statements queued for the next round trip (`DriverSql.later`, PostgreSQL) are never lost, reordered or
carried into another transaction: whatever runs next on the connection, or its commit, sends them first."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from testledger.db.driver_sql import DriverSql
from testledger.db.engine import Store
from testledger.errors import Conflict


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    yield store
    with store.write() as db:  # the store is shared with this worker's other tests: no queued run without a run
        db.execute(text("DELETE FROM analytics_queue q "
                        "WHERE NOT EXISTS (SELECT 1 FROM test_runs r WHERE r.id = q.run_id)"))
    store.dispose()


def _queue(db: Session, run_id: uuid.UUID) -> None:
    sql = DriverSql.of(db)
    sql.later(sql.enqueue, (run_id,))


def _queued(store: Store, run_id: uuid.UUID) -> int:
    with store.read() as db:
        return int(db.scalar(text("SELECT count(*) FROM analytics_queue WHERE run_id = :r"), {"r": run_id}))


def test_a_queued_insert_goes_before_the_next_statement_and_with_the_commit(pg_store: Store) -> None:
    seen, committed = uuid.uuid4(), uuid.uuid4()
    with pg_store.write() as db:
        _queue(db, seen)
        assert DriverSql.of(db).pending  # nothing sent yet: it waits for the next round trip
        count = db.scalar(text("SELECT count(*) FROM analytics_queue WHERE run_id = :r"), {"r": seen})
        assert count == 1
        _queue(db, committed)  # the last statement of the transaction: the commit sends it
    assert (_queued(pg_store, seen), _queued(pg_store, committed)) == (1, 1)


def test_a_rolled_back_transaction_takes_its_queued_statements_with_it(pg_store: Store) -> None:
    dropped, later = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(RuntimeError), pg_store.write() as db:
        _queue(db, dropped)
        raise RuntimeError("the ingest failed")
    with pg_store.write() as db:  # the same pooled connection: nothing of the failed transaction rides along
        _queue(db, later)
        db.execute(text("SELECT 1"))
    assert (_queued(pg_store, dropped), _queued(pg_store, later)) == (0, 1)


def test_what_was_queued_before_a_savepoint_survives_its_rollback(pg_store: Store) -> None:
    """`ingest --partial` puts each report in a savepoint: a report that fails must not take the run with it."""
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    with pg_store.write() as db:
        _queue(db, kept)
        savepoint = db.begin_nested()
        _queue(db, dropped)
        savepoint.rollback()
    assert (_queued(pg_store, kept), _queued(pg_store, dropped)) == (1, 0)


def test_a_queued_statement_that_fails_with_the_commit_stores_nothing(pg_store: Store) -> None:
    """The queue goes with the COMMIT: a statement of it that fails there fails the transaction as a whole,
    said as the store's fault, and the connection serves the next transaction."""
    first, clash = uuid.uuid4(), uuid.uuid4()
    seq = 2**62  # far above the sequence: no other test's row has it
    with pytest.raises(Conflict), pg_store.write() as db:
        _queue(db, first)
        sql = DriverSql.of(db)
        for run_id in (clash, clash):  # the same primary key twice
            sql.later("INSERT INTO analytics_queue (seq, run_id) VALUES (%s, %s)", (seq, run_id))
    assert (_queued(pg_store, first), _queued(pg_store, clash)) == (0, 0)
    after = uuid.uuid4()
    with pg_store.write() as db:
        _queue(db, after)
    assert _queued(pg_store, after) == 1


def test_a_small_ingest_takes_three_round_trips(pg_url: str, tmp_path: Any) -> None:
    """BEGIN, the run number (its key needs it), then everything else with the COMMIT: a CI fleet's many small
    reports pay the network's latency three times each, not ten. Counted from libpq's trace of the protocol."""
    from testledger.schemas import IngestOptions
    from testledger.services.ingest import ingest_files

    report = tmp_path / "TEST-a.xml"
    cases = "".join(f'<testcase classname="pkg.C" name="t{n}" time="0.01"/>' for n in range(100))
    report.write_text(f'<testsuite name="s">{cases}<testcase classname="pkg.C" name="f">'
                      '<failure message="boom">trace</failure></testcase></testsuite>')
    options = IngestOptions(actor="ci", max_report_bytes=1 << 20, pipeline_key="unit", environment="ci",
                            allowed_environments=("ci",), trigger="api")
    store = Store(pg_url, ping_after_idle_s=3600)  # no ping of the pooled connection in between
    trace = tmp_path / "trace"
    try:
        with store.write() as db:  # the workspace, the pipeline and the tests exist from here on
            ingest_files(db, workspace="WKS", sources=[report], options=options)
        fd = os.open(trace, os.O_WRONLY | os.O_CREAT)
        try:
            with store.engine.connect() as conn:  # the pool's one connection, which the ingest then takes
                conn.connection.driver_connection.pgconn.trace(fd)  # type: ignore[union-attr]
            with store.write() as db:
                ingest_files(db, workspace="WKS", sources=[report], options=options)
            with store.engine.connect() as conn:
                conn.connection.driver_connection.pgconn.untrace()  # type: ignore[union-attr]
        finally:
            os.close(fd)
    finally:
        store.dispose()
    sides = [line.split("\t")[1] for line in trace.read_text().splitlines() if line.count("\t") >= 2]
    assert sum(1 for a, b in itertools.pairwise(sides) if (a, b) == ("F", "B")) == 3
