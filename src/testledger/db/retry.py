"""Writes that wait out a busy store: a transaction that failed because another writer held the lock
(or the connection dropped) is run again with backoff, for long-lived writers such as the executor
and the pytest plugin, which must not abandon a run because an ingest held the store for a while."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from testledger.db.engine import Store
from testledger.errors import Unavailable

if TYPE_CHECKING:  # a run's bookkeeping retries on Core connections, without the ORM
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
T = TypeVar("T")
Db = TypeVar("Db")

#: How long a write keeps trying before its error is raised: longer than any ingest we expect to
#: hold the SQLite lock (a 300k-case report), short enough that a store that is really gone is noticed.
RETRY_SECONDS = 120.0
_FIRST_PAUSE_S, _LONGEST_PAUSE_S = 0.05, 2.0
#: PostgreSQL states worth another try: serialization failure, deadlock, lock not available,
#: and the connection exceptions (class 08) and shutdowns (57P01-57P03).
_PG_RETRY_STATES = ("40001", "40P01", "55P03", "08", "57P01", "57P02", "57P03")


def busy(exc: BaseException) -> bool:
    """Whether `exc` says the store was busy or briefly out of reach, not that the write was wrong."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str):
        return state.startswith(_PG_RETRY_STATES)
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        return "database is locked" in text or "database is busy" in text or "server closed" in text
    return False


def write_with_retry(
    store: Store, work: Callable[[Session], T], *, what: str, retry_seconds: float = RETRY_SECONDS,
) -> T:
    """Run `work` in a write transaction of `store`; while the store is busy, roll back and run it again
    (pauses doubling from 50 ms to 2 s) for up to `retry_seconds`. `work` must be safe to repeat:
    everything it did in a failed attempt was rolled back."""
    return _retrying(store.write, work, what=what, retry_seconds=retry_seconds)


def write_connection_with_retry(
    store: Store, work: Callable[[Connection], T], *, what: str, retry_seconds: float = RETRY_SECONDS,
) -> T:
    """`write_with_retry` on a Core connection (`Store.write_connection`), for writers without the ORM."""
    return _retrying(store.write_connection, work, what=what, retry_seconds=retry_seconds)


def _retrying(
    transaction: Callable[[], AbstractContextManager[Db]], work: Callable[[Db], T], *, what: str,
    retry_seconds: float,
) -> T:
    deadline = time.monotonic() + retry_seconds
    pause = _FIRST_PAUSE_S
    tries = 0
    while True:
        tries += 1
        try:
            with transaction() as db:
                result = work(db)
        except (DBAPIError, Unavailable) as exc:
            # The store maps database faults to domain errors; the driver's error is their cause.
            fault = exc.__cause__ if isinstance(exc, Unavailable) else exc
            if fault is None or not busy(fault) or time.monotonic() + pause > deadline:
                raise
            log.warning("%s: the store is busy (%s); trying again in %.2fs", what, _first_line(fault), pause)
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE_S)
            continue
        if tries > 1:
            log.info("%s: written after %d tries", what, tries)
        return result


def _first_line(fault: BaseException) -> str:
    text = str(getattr(fault, "orig", fault)).strip()
    return text.splitlines()[0] if text else "busy"
