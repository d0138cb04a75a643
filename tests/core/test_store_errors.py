"""Database faults leave the store as domain errors, the same on SQLite and PostgreSQL, for every adapter."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from testledger.db.engine import Store
from testledger.db.tables import Workspace
from testledger.db.types import utcnow
from testledger.errors import Busy, Conflict, Unavailable


def _workspace(key: str) -> Workspace:
    return Workspace(key=key, name=key, run_seq=0, created_at=utcnow())


def test_a_lost_race_for_a_new_row_is_a_conflict(store: Store) -> None:
    with store.write() as db:
        db.add(_workspace("RACE"))
    lost = "changed the same data at the same time; nothing was stored: run it again"
    with pytest.raises(Conflict, match=lost), store.write() as db:
        db.add(_workspace("RACE"))
    with store.read() as db:  # the losing transaction left nothing behind
        assert db.scalar(text("SELECT count(*) FROM workspaces WHERE key = 'RACE'")) == 1


def test_a_store_locked_by_another_writer_is_busy(store_url: str) -> None:
    """A writer that cannot get the lock in time gets `Busy` (an `Unavailable`), never a driver error."""
    holder: Any
    if store_url.startswith("sqlite"):
        holder = sqlite3.connect(make_url(store_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        waiting = Store(store_url, busy_timeout_ms=200)
    else:
        holder = create_engine(store_url).connect()
        holder.execute(text("INSERT INTO workspaces (key, name, run_seq, created_at) VALUES ('LOCK', 'L', 0, now())"))
        holder.commit()
        holder.execute(text("SELECT * FROM workspaces WHERE key = 'LOCK' FOR UPDATE"))
        waiting = Store(store_url.replace("?options=", "?options=-clock_timeout%3D200%20"))
    try:
        busy = r"is busy \(.*\): another command is writing; run it again"
        with pytest.raises(Busy, match=busy) as caught, waiting.write() as db:
            db.execute(text("UPDATE workspaces SET run_seq = run_seq + 1"))
        assert isinstance(caught.value, Unavailable)
    finally:
        holder.rollback()
        holder.close()
        waiting.dispose()


@pytest.mark.parametrize("use", ["write", "read"])
def test_an_unreachable_store_is_unavailable_with_the_password_hidden(use: str) -> None:
    store = Store("postgresql+psycopg://tl:hunter2@127.0.0.1:9/test", check_schema=False)
    with pytest.raises(Unavailable, match="is unavailable: ") as caught, getattr(store, use)() as db:
        db.execute(text("SELECT 1"))
    assert "hunter2" not in str(caught.value) and "tl:***@127.0.0.1:9" in str(caught.value)


def test_an_unreadable_sqlite_file_is_unavailable(tmp_path: Any) -> None:
    path = tmp_path / "testledger.db"
    store = Store(f"sqlite:///{path}")
    store.dispose()
    for leftover in tmp_path.glob("testledger.db-*"):
        leftover.unlink()
    path.write_bytes(b"not a database" * 1000)
    with pytest.raises(Unavailable, match="is unavailable: file is not a database"), store.read() as db:
        db.execute(text("SELECT count(*) FROM test_runs"))


def test_cli_maps_the_domain_error_to_its_exit_code(
    cli: Any, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI only maps domain errors: a busy store is exit 5 and one line, no traceback."""
    from testledger.settings import get_settings

    assert cli("runs", "start", "-p", "e2e", "-e", "ci").code == 0
    holder: Any
    if store_url.startswith("sqlite"):
        holder = sqlite3.connect(make_url(store_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        monkeypatch.setenv("TESTLEDGER_SQLITE_BUSY_TIMEOUT_MS", "200")
    else:
        holder = create_engine(store_url).connect()
        holder.execute(text("SELECT * FROM workspaces WHERE key = 'WKS' FOR UPDATE"))
        locking = store_url.replace("?options=", "?options=-clock_timeout%3D200%20")
        monkeypatch.setenv("TESTLEDGER_DATABASE_URL", locking)
    get_settings.cache_clear()
    try:
        result = cli("runs", "start", "-p", "e2e", "-e", "ci")
    finally:
        holder.rollback()
        holder.close()
    assert result.code == 5
    assert result.stderr.startswith("error: the store at ") and "is busy" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def _kill_pooled_connection(store: Store, pg_url: str) -> None:
    """End the store's pooled connection from the server side, as a restart or an idle timeout would."""
    with store.read() as db:
        pid = db.scalar(text("SELECT pg_backend_pid()"))
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_postgresql_connection_dropped_while_idle_is_replaced(pg_url: str) -> None:
    """A pooled connection idle past the ping threshold is checked before use, so the server ending
    it (a restart, a firewall's idle timeout) costs the next write nothing."""
    store = Store(pg_url, ping_after_idle_s=0)
    try:
        _kill_pooled_connection(store, pg_url)
        with store.write() as db:
            assert db.scalar(text("SELECT 1")) == 1
    finally:
        store.dispose()


def test_a_postgresql_connection_dropped_in_steady_use_fails_once_then_is_replaced(pg_url: str) -> None:
    """Below the threshold no round trip checks the connection: a drop fails that one transaction as
    `Unavailable` (which the retrying writers try again), and the next one gets a new connection."""
    store = Store(pg_url, ping_after_idle_s=3600)
    try:
        _kill_pooled_connection(store, pg_url)
        with pytest.raises(Unavailable, match="is unavailable: "), store.write() as db:
            db.execute(text("SELECT 1"))
        with store.write() as db:
            assert db.scalar(text("SELECT 1")) == 1
    finally:
        store.dispose()


def test_a_lock_timeout_under_an_ingest_is_busy_and_stores_nothing(pg_url: str, tmp_path: Any) -> None:
    """The ingest's first statements run on the driver connection itself (no SQLAlchemy on that path): a
    driver error there (here PostgreSQL's lock_timeout, while another writer holds the workspace's run
    counter) is still the store's fault, said the same way, never a driver's traceback."""
    from testledger.schemas import IngestOptions
    from testledger.services.ingest import ingest_files

    report = tmp_path / "TEST-a.xml"
    report.write_text('<testsuite name="s"><testcase classname="c" name="t" time="0.1"/></testsuite>')
    options = IngestOptions(actor="ci", max_report_bytes=1 << 20, pipeline_key="unit", environment="ci",
                            allowed_environments=("ci",), trigger="api")
    store = Store(pg_url.replace("?options=", "?options=-clock_timeout%3D200%20"))
    holder = create_engine(pg_url)
    try:
        with store.write() as db:
            ingest_files(db, workspace="WKS", sources=[report], options=options)
            before = db.scalar(text("SELECT count(*) FROM test_runs"))  # the store is shared with other tests
        with holder.begin() as conn:
            conn.execute(text("UPDATE workspaces SET run_seq = run_seq WHERE key = 'WKS'"))  # held until the end
            with pytest.raises(Busy, match="is busy"), store.write() as db:
                ingest_files(db, workspace="WKS", sources=[report], options=options)
        with store.read() as db:
            assert db.scalar(text("SELECT count(*) FROM test_runs")) == before
    finally:
        holder.dispose()
        store.dispose()


@pytest.mark.parametrize("cleanup_error", [
    Unavailable("the store at postgresql://h/db is unavailable: another command is already in progress"),
    RuntimeError("another command is already in progress"),  # a driver's error SQLAlchemy did not wrap
])
def test_an_interrupt_whose_cleanup_fails_is_still_reported_as_interrupted(
    cli: Any, monkeypatch: pytest.MonkeyPatch, cleanup_error: Exception,
) -> None:
    """Ctrl-C or SIGTERM during a PostgreSQL COPY: rolling back on the way out fails because the COPY is
    still open. The user stopped the command; that is what they are told, with the interrupt's exit code."""
    from testledger.services import runs

    def interrupted_mid_copy(*_args: Any, **_kwargs: Any) -> None:
        try:
            raise KeyboardInterrupt
        finally:
            raise cleanup_error

    monkeypatch.setattr(runs, "list_executions", interrupted_mid_copy)
    result = cli("runs", "list")
    assert (result.code, result.stderr) == (130, "error: interrupted\n")


def test_an_interrupt_while_a_statement_is_in_flight_leaves_no_traceback_and_stores_nothing(
    pg_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGTERM or Ctrl-C can land while psycopg still has a statement on the wire. Rolling that
    connection back fails ("another command is already in progress"), and the pool logged it with a
    traceback when it reset the connection on its way out: the connection is dropped instead, which
    ends the transaction on the server."""
    import gc
    import logging

    store = Store(pg_url)
    try:
        with store.read() as db:
            before = db.scalar(text("SELECT count(*) FROM workspaces"))
        caplog.set_level(logging.WARNING)
        with pytest.raises(KeyboardInterrupt), store.write() as db:
            db.add(_workspace("HALFWAY"))
            db.flush()
            driver: Any = db.connection().connection.driver_connection
            driver.pgconn.send_query(b"SELECT pg_sleep(2)")
            raise KeyboardInterrupt
        gc.collect()
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        with store.write() as db:  # the pool hands out a working connection again
            db.add(_workspace("AFTER"))
        with store.read() as db:
            keys = set(db.scalars(text("SELECT key FROM workspaces")))
            assert "HALFWAY" not in keys and "AFTER" in keys
            assert db.scalar(text("SELECT count(*) FROM workspaces")) == before + 1
    finally:
        store.dispose()


@pytest.mark.parametrize("use", ["read", "read_connection"])
def test_an_interrupt_during_a_read_with_a_statement_in_flight_leaves_no_traceback(
    pg_url: str, caplog: pytest.LogCaptureFixture, use: str,
) -> None:
    import gc
    import logging

    store = Store(pg_url)
    try:
        caplog.set_level(logging.WARNING)
        with pytest.raises(KeyboardInterrupt), getattr(store, use)() as db:
            conn = db.connection() if use == "read" else db
            conn.exec_driver_sql("SELECT 1")
            driver: Any = conn.connection.driver_connection
            driver.pgconn.send_query(b"SELECT pg_sleep(2)")
            raise KeyboardInterrupt
        gc.collect()
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        with store.read() as db:  # the pool hands out a working connection again
            assert db.scalar(text("SELECT 1")) == 1
    finally:
        store.dispose()
