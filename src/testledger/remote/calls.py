"""Where a service call goes: into a transaction of the local store, or to the configured server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from testledger.errors import Invalid

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from testledger.db.engine import Store
    from testledger.remote.client import Remote

P = ParamSpec("P")
T = TypeVar("T")


class ServiceCalls:
    """`read(fn, ...)` and `write(fn, ...)` run `fn(db, ...)` on the local store, or, when a server is
    configured, have the server answer the same call: an adapter obtains its data from either alike."""

    def __init__(self, store: Callable[[], Store] | None, server: Remote | None) -> None:
        if store is None and server is None:
            raise ValueError("a store or a server is needed")
        self._store, self.server = store, server

    def read(self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.server is not None:
            return self.server.call(fn, *args, **kwargs)
        assert self._store is not None
        with self._store().read() as db:
            return fn(db, *args, **kwargs)

    def read_rows(self, fn: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`read` for a service that reads through Core on a bare connection (no ORM session, so a
        command that only lists or shows does not import the ORM: start-up time)."""
        if self.server is not None:
            return self.server.call(fn, *args, **kwargs)
        assert self._store is not None
        with self._store().read_connection() as db:
            return fn(db, *args, **kwargs)

    def write(self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.server is not None:
            return self.server.call(fn, *args, **kwargs)
        assert self._store is not None
        with self._store().write() as db:
            return fn(db, *args, **kwargs)


class LocalOnly:
    """Stands where a store would be while a server is configured: using it says, in one line, that this
    needs a local store."""

    def __init__(self, server: Remote | None) -> None:
        self._url = server.url if server is not None else "a server"

    def __getattr__(self, name: str) -> Any:
        raise Invalid(f"this works on a local store only, and TESTLEDGER_URL names a server ({self._url}): "
                      "unset TESTLEDGER_URL and TESTLEDGER_TOKEN to use it")
