"""The composition root: the HTTP application `testledger serve` runs (the REST API with the MCP server
mounted at /mcp) and the stdio MCP server `testledger mcp` runs. The one module that knows both
adapters, so that neither imports the other."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.types import Receive, Scope, Send

    from testledger.api.state import ApiState
    from testledger.db.engine import Store
    from testledger.remote.client import Remote
    from testledger.settings import Settings

#: Set by `testledger serve` for its workers, which build the app through `serve_app`.
NO_AUTH_ENV = "TESTLEDGER_SERVE_NO_AUTH"
HOST_ENV = "TESTLEDGER_SERVE_HOST"
MCP_PATH = "/mcp"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_app() -> FastAPI:
    """The factory uvicorn calls in each worker of `testledger serve`."""
    no_auth = os.environ.get(NO_AUTH_ENV) == "1"
    host = os.environ.get(HOST_ENV, "127.0.0.1")
    if no_auth and not is_loopback(host):
        raise SystemExit("--no-auth is only allowed on a loopback address (127.0.0.1, ::1, localhost)")
    return http_app(auth=not no_auth, host=host)


def http_app(settings: Settings | None = None, store: Store | None = None, *, auth: bool = True,
             host: str = "127.0.0.1") -> FastAPI:
    """The REST API with the MCP server's streamable HTTP transport at /mcp, behind the same tokens."""
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.routing import Route

    from testledger.api.app import create_app
    from testledger.mcp_server.server import build_server
    from testledger.mcp_server.tools import Backend

    app = create_app(settings, store, auth=auth)
    state = app.state.ledger
    backend = Backend(state.store, state.settings, runs=state.runs)
    mcp = build_server(backend)
    # Stateless: any worker of `serve --workers N` answers any request. Tokens guard every request;
    # without them (loopback only) the Host header is checked against DNS rebinding as well.
    security = (TransportSecuritySettings(enable_dns_rebinding_protection=False) if auth or not is_loopback(host)
                else None)
    mcp.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, host=host,
                            transport_security=security)
    manager = mcp.session_manager

    app.router.routes.append(Route(MCP_PATH, endpoint=_McpEndpoint(state, manager), methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with previous(application) as value, manager.run():
            try:
                yield value
            finally:
                state.runs.shutdown()  # runs started here are cancelled, never left running

    app.router.lifespan_context = lifespan
    return app


class _McpEndpoint:
    """The /mcp route: the caller's token (as the REST API checks it) goes into the request for the tools."""

    def __init__(self, state: ApiState, manager: StreamableHTTPSessionManager) -> None:
        self.state, self.manager = state, manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from testledger.api.deps import principal_of_header
        from testledger.mcp_server.server import PRINCIPAL_SCOPE_KEY

        principal = principal_of_header(self.state, _header(scope, b"authorization"))
        if principal is None:
            await _unauthorised(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.manager.handle_request(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _unauthorised(scope: Scope, receive: Receive, send: Send) -> None:
    from starlette.responses import JSONResponse

    response = JSONResponse(
        {"type": "about:blank", "title": "Unauthorized", "status": 401,
         "detail": "send an API token as `Authorization: Bearer <token>` (`testledger tokens create`)"},
        status_code=401, media_type="application/problem+json", headers={"WWW-Authenticate": "Bearer"},
    )
    await response(scope, receive, send)


def run_stdio_mcp(store: Store | None, settings: Settings, *, workspace: str, actor: str,
                  remote: Remote | None = None) -> None:
    """Serve the MCP tools on stdin/stdout for the local user, over the local store or (`remote`) a server;
    runs this process started and still going at the end are cancelled."""
    from testledger.mcp_server.server import build_server
    from testledger.mcp_server.tools import Backend

    backend = Backend(store, settings, workspace=workspace, actor=actor, remote=remote)
    try:
        build_server(backend).run("stdio")
    finally:
        if backend.runs is not None:
            backend.runs.shutdown()
        if remote is not None:
            remote.close()
