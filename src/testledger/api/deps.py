"""Dependencies every route shares, as `Annotated` aliases: the app state, sessions, and who is asking."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from testledger.api.state import ApiState
from testledger.errors import NotFound
from testledger.keys import workspace_of
from testledger.services.tokens import ROLES, Principal, authenticate, touch_token

T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="An API token from `testledger tokens create`.")
NO_AUTH = Principal(token_id=None, workspace=None, role="admin", operator="local")


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in a worker
# thread, a hop per dependency per request (issue 11: a fifth of a run-list request).
async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.ledger
    return state


State = Annotated[ApiState, Depends(get_state)]


def read_session(state: State) -> Iterator[Session]:
    with state.store.read() as db:
        yield db


def write_session(state: State) -> Iterator[Session]:
    with state.store.write() as db:
        yield db


ReadDb = Annotated[Session, Depends(read_session)]
WriteDb = Annotated[Session, Depends(write_session)]


async def read_on_loop(state: ApiState, read: Callable[[], T]) -> T:
    """`read()` of a bounded page (an index walk of a few dozen rows): on the event loop on SQLite,
    where it costs less CPU than the hop to a worker thread (~0.15 ms, a tenth of a run-list request;
    a WAL reader never waits for writers); in the threadpool on PostgreSQL, which waits on the network."""
    if state.store.dialect == "sqlite":
        return read()
    return await run_in_threadpool(read)


def principal_of_header(state: ApiState, authorization: str | None) -> Principal | None:
    """The principal an `Authorization` header names (the local admin without auth); None when it names none."""
    if not state.auth:
        return NO_AUTH
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return state.tokens.get(token.strip()) or checked_principal(state, token.strip())


def checked_principal(state: ApiState, token: str) -> Principal | None:
    """The token's principal as the store says now (remembered for a moment, `api.token_cache`); None if
    it is unknown, revoked or expired."""
    generation = state.tokens.generation
    with state.store.read_connection() as db:
        found = authenticate(db, token=token)
    if found is None:
        return None
    principal, due = found
    if due and principal.token_id is not None:
        with state.store.write() as db:
            touch_token(db, token_id=principal.token_id)
    state.tokens.remember(token, principal, generation=generation)
    return principal


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def current_principal(state: ApiState, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The token's workspace and role; 401 (the same answer for every kind of bad token) otherwise."""
    if not state.auth:
        return NO_AUTH
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "send an API token as `Authorization: Bearer <token>` (`testledger tokens create`)",
                            headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials
    principal = state.tokens.get(token) or await state.tokens.check_once(
        token, lambda: run_in_threadpool(checked_principal, state, token))
    if principal is None:
        raise HTTPException(401, "the API token is unknown, revoked or expired", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(role: str) -> Callable[[ApiState, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """A dependency admitting tokens with at least `role` (viewer < runner < admin)."""
    needed = ROLES.index(role)

    # The token checked here rather than in a dependency of its own: each level of FastAPI's
    # dependency tree costs ~15 µs a request (issue 11).
    async def check(state: State, credentials: Credentials) -> Principal:
        principal = await current_principal(state, credentials)
        if ROLES.index(principal.role) < needed:
            raise HTTPException(403, f"this needs a {role} token; yours is {principal.role}")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Runner = Annotated[Principal, Depends(require("runner"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def visible_workspace(principal: Principal, requested: str | None) -> str | None:
    """The workspace a read is limited to: the token's own; another one does not exist for it (404)."""
    if principal.workspace is None:
        return requested
    if requested is not None and requested != principal.workspace:
        raise NotFound(f"workspace '{requested}' not found")
    return principal.workspace


def acting_workspace(principal: Principal, requested: str | None, state: ApiState) -> str:
    """The workspace a call acts for: the token's own, or (without auth) the one named, else the default."""
    return visible_workspace(principal, requested) or state.settings.workspace


def run_workspace(principal: Principal, key: str) -> str:
    """The workspace a lookup by run key acts for: the token's own, or (without auth) the one the key names."""
    return principal.workspace or workspace_of(key)
