"""Statements queued for the next round trip (`DriverSql.later`, PostgreSQL) are never lost, reordered or
carried into another transaction: whatever runs next on the connection, or its commit, sends them first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
