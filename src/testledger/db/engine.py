"""Opening a store: the engine for SQLite (WAL, busy timeout, foreign keys) or PostgreSQL,
schema checks, self-migration of SQLite stores, and sessions for reading and writing."""

from __future__ import annotations

import fcntl
import logging
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DatabaseError,
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)

from testledger.errors import Busy, Conflict, Invalid, Unavailable

if TYPE_CHECKING:  # the ORM is imported when a session is first asked for: read paths run without it
    from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

#: The newest migration; a store at any other revision needs `testledger db upgrade`.
HEAD_REVISION = "0011"


#: Every engine of this process not yet garbage (see `close_stores`).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _sqlite_engine(url: str, *, busy_timeout_ms: int, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
    _ENGINES.add(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own transactions, so writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # Readers get a larger page cache for history queries; a writer's cache fills with dirty
        # pages of one big transaction, so it stays small to keep ingest memory flat (117 vs 158 MB
        # for a 100k-case report, at the same speed).
        cur.execute(f"PRAGMA cache_size=-{16_384 if immediate else 65_536}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes cannot wait for a lock held by another
        # process (SQLite returns BUSY at once to avoid a deadlock). Writers therefore start with
        # BEGIN IMMEDIATE and queue on the busy timeout; readers stay deferred and never block.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


#: A pooled PostgreSQL connection idle longer than this is pinged before use (a server restart or a
#: firewall may have dropped it); one in steady use is not: `pool_pre_ping` cost a round trip
#: (`SELECT 1`) per transaction, a tenth of a small ingest. A connection dropped within this window
#: fails its next transaction once and is replaced (the retrying writers try again).
PING_AFTER_IDLE_S = 2.0


def _postgresql_engine(url: str, *, ping_after_idle_s: float) -> Engine:
    engine = create_engine(url)
    _ENGINES.add(engine)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < ping_after_idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the driver's own error for a dead connection
            # The pool replaces the connection and checks out a new one.
            raise DisconnectionError(f"pooled connection lost while idle: {exc}") from exc

    return engine


class Store:
    """A connection to one testledger store. Create one per process; it is cheap to keep."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 30_000,
        auto_migrate: bool | None = None,
        check_schema: bool = True,
        ping_after_idle_s: float = PING_AFTER_IDLE_S,
    ) -> None:
        self.url = url
        self._make_engine: Callable[[], Engine]
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # The writer's engine is built when something first writes: a read-only command
            # (`runs list`) does not pay for it (issue 9).
            self._make_engine = lambda: _sqlite_engine(url, busy_timeout_ms=busy_timeout_ms, immediate=True)
            self._read_engine = _sqlite_engine(url, busy_timeout_ms=busy_timeout_ms, immediate=False)
        elif self.dialect == "postgresql":
            self._read_engine = _postgresql_engine(url, ping_after_idle_s=ping_after_idle_s)
            self._make_engine = lambda: self._read_engine
        else:
            raise Invalid(
                f"unsupported database '{self.dialect}' in TESTLEDGER_DATABASE_URL "
                "(expected sqlite:///PATH or postgresql+psycopg://HOST/DB)"
            )
        # SQLite stores migrate themselves (new or older); PostgreSQL waits for `db upgrade`.
        migrate = self.dialect == "sqlite" if auto_migrate is None else auto_migrate
        if check_schema:
            self._ensure_schema(migrate=migrate)
        logger.debug("store %s opened", self.safe_url)

    @cached_property
    def engine(self) -> Engine:
        """The engine writers use (on SQLite its transactions begin IMMEDIATE; on PostgreSQL it is
        the readers' engine too)."""
        return self._make_engine()

    # -- schema -------------------------------------------------------------------------------
    def revision(self) -> str | None:
        try:
            with self._read_engine.connect() as conn:  # a store that cannot be reached raises here
                try:
                    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                except (OperationalError, ProgrammingError):  # no version table: an empty store
                    return None
        except OperationalError as exc:
            raise Unavailable(f"cannot open the store at {self.safe_url}: {self._reason(exc)}") from exc

    def upgrade(self) -> None:
        """Run every pending migration (`testledger db upgrade`)."""
        from testledger.db.migrate import upgrade

        with self._domain_errors(), self._migration_lock():
            upgrade(self.engine)
        logger.info("store %s upgraded to revision %s", self.safe_url, HEAD_REVISION)

    def _ensure_schema(self, *, migrate: bool) -> None:
        current = self.revision()
        if current == HEAD_REVISION:
            return
        if migrate:
            self.upgrade()
            return
        found = f"at revision {current}" if current else "not initialised"
        raise Unavailable(f"the store at {self.safe_url} is {found}: run `testledger db upgrade`")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Serialise migrations of one SQLite file across processes (PostgreSQL locks in DDL)."""
        database = make_url(self.url).database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate-lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    # -- sessions -----------------------------------------------------------------------------
    @cached_property
    def _writer(self) -> sessionmaker[Session]:
        from sqlalchemy.orm import sessionmaker

        maker = sessionmaker(self.engine, expire_on_commit=False)
        if self.dialect != "sqlite":
            event.listen(maker, "after_begin", _note_connection)
        return maker

    @cached_property
    def _reader(self) -> sessionmaker[Session]:
        from sqlalchemy.orm import sessionmaker

        maker = sessionmaker(self._read_engine, expire_on_commit=False)
        if self.dialect != "sqlite":
            event.listen(maker, "after_begin", _note_connection)
        return maker

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction: committed on success, rolled back on any error.

        Database faults leave as domain errors, so every adapter answers them the same way.
        """
        with self._domain_errors(), self._writer() as session, session.begin():
            try:
                yield session
            except (KeyboardInterrupt, SystemExit):
                _drop_connections(session)
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session that never waits for writers."""
        with self._domain_errors(), self._reader() as session:
            try:
                yield session
            except (KeyboardInterrupt, SystemExit):
                _drop_connections(session)
                raise
            finally:
                session.rollback()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read-only Core connection that never waits for writers, for read paths that build their
        schemas from rows (`runs list`, `runs show`, `GET /api/v1/executions`): no ORM session, so
        nothing imports or configures the ORM for them."""
        with self._domain_errors(), self._read_engine.connect() as conn:
            try:
                with self._dropped_on_interrupt(conn):
                    yield conn
            finally:
                conn.rollback()

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in one write transaction, committed on success and rolled back on any
        error, as `write` is for sessions: for writers that need no ORM (a run's bookkeeping), so the
        command that runs them neither imports nor configures it."""
        with self._domain_errors(), self.engine.begin() as conn, self._dropped_on_interrupt(conn):
            yield conn

    @contextmanager
    def _dropped_on_interrupt(self, conn: Connection) -> Iterator[None]:
        """After Ctrl-C or SIGTERM a PostgreSQL connection is closed, not rolled back (as
        `_drop_connections` does for sessions)."""
        try:
            yield
        except (KeyboardInterrupt, SystemExit):
            if self.dialect != "sqlite":
                conn.invalidate()
            raise

    @contextmanager
    def _domain_errors(self) -> Iterator[None]:
        """Map the store's faults once: unreachable or locked -> `Unavailable` (`Busy` when another
        writer holds the lock), a lost race for a new row -> `Conflict`. The driver's own errors (from
        the statements the hot paths run on the driver connection) are mapped as SQLAlchemy's are."""
        try:
            yield
        except DBAPIError as exc:
            self._raise_domain_error(exc)
        except Exception as exc:
            wrapped = _from_driver(exc)
            if wrapped is None:
                raise
            self._raise_domain_error(wrapped)

    def _raise_domain_error(self, exc: DBAPIError) -> NoReturn:
        if isinstance(exc, ProgrammingError | DataError):
            raise exc  # a bug in our SQL, not a fault of the store
        if isinstance(exc, IntegrityError):
            # Two writers raced for the same new row (on PostgreSQL, e.g. two applies of one pipeline).
            logger.info("store %s: integrity error: %s", self.safe_url, self._reason(exc))
            raise Conflict("another command changed the same data at the same time; nothing was stored: "
                           "run it again") from exc
        if not isinstance(exc, DatabaseError):
            raise exc
        reason = self._reason(exc)  # unreachable, locked, corrupt, out of disk
        logger.info("store %s: %s", self.safe_url, reason)
        if _is_busy(exc):
            raise Busy(f"the store at {self.safe_url} is busy ({reason}): another command is writing; "
                       "run it again in a moment") from exc
        raise Unavailable(f"the store at {self.safe_url} is unavailable: {reason}") from exc

    def _reason(self, exc: DatabaseError) -> str:
        """The driver's first line, with the URL's password (should a driver echo it) hidden."""
        text_ = str(exc.orig).strip()
        reason = text_.splitlines()[0] if text_ else type(exc.orig).__name__
        password = make_url(self.url).password
        return reason.replace(str(password), "***") if password else reason

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        self._read_engine.dispose()


def connection_of(db: Session | Connection) -> Connection:
    """Where Core and driver statements run: the connection itself, or the session's connection once its
    pending changes are flushed (so a service reads back the run it has just moved along)."""
    if isinstance(db, Connection):
        return db
    db.flush()
    return db.connection()


def close_stores() -> None:
    """Close the pooled connections of every store this process opened, as the interpreter's teardown
    would (the last SQLite connection folds the write-ahead log into the database file; a PostgreSQL
    session ends with a goodbye rather than a dropped socket). For a process about to leave without
    that teardown."""
    for engine in list(_ENGINES):
        engine.dispose()


#: Where a PostgreSQL write session keeps the connections it began transactions on (`Session.info`).
_CONNECTIONS = "testledger.connections"


def _note_connection(session: Session, _transaction: Any, connection: Connection) -> None:
    session.info.setdefault(_CONNECTIONS, []).append(connection)


def _drop_connections(session: Session) -> None:
    """After Ctrl-C or SIGTERM, close the session's PostgreSQL connections instead of rolling them
    back: the interrupt may have landed while psycopg had a statement on the wire, and a ROLLBACK then
    fails ("another command is already in progress"), replacing the interrupt with a store error and,
    when the pool resets the connection later, logging a traceback. Closing the socket ends the
    transaction on the server just as surely; the pool opens a new connection next time."""
    for connection in session.info.pop(_CONNECTIONS, ()):
        if not connection.invalidated and not connection.closed:
            connection.invalidate()


def _from_driver(exc: Exception) -> DBAPIError | None:
    """A driver's own error (sqlite3's, psycopg's) as SQLAlchemy wraps it, or None for any other error."""
    driver = sys.modules.get(type(exc).__module__.partition(".")[0])
    base = getattr(driver, "Error", None) if driver is not None and driver.__name__ in ("sqlite3", "psycopg") else None
    if not isinstance(base, type) or not isinstance(exc, base):
        return None
    wrapped = DBAPIError.instance(None, None, exc, base)
    return wrapped if isinstance(wrapped, DBAPIError) else None


def _is_busy(exc: DatabaseError) -> bool:
    """A lock held by another writer (SQLite's busy timeout, PostgreSQL's lock or statement timeout)."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return "database is locked" in str(exc.orig) or sqlstate in ("55P03", "57014", "40P01")


def open_store(url: str | None = None, *, check_schema: bool = True) -> Store:
    """The store the settings name (`TESTLEDGER_DATABASE_URL`, else SQLite under `TESTLEDGER_HOME`)."""
    from testledger.settings import get_settings

    settings = get_settings()
    return Store(
        url or settings.resolved_database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        check_schema=check_schema,
    )
