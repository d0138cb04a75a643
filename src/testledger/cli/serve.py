"""`testledger serve`: the REST API on uvicorn."""

from __future__ import annotations

import os

import typer


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes."),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Serve without API tokens (every request acts as admin); only on a loopback host."
    ),
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the MCP server (/mcp); requests need a Bearer token."""
    import uvicorn

    from testledger.cli.context import store
    from testledger.errors import Invalid
    from testledger.server import HOST_ENV, NO_AUTH_ENV, is_loopback

    if no_auth and not is_loopback(host):
        raise Invalid(f"--no-auth is only allowed on a loopback address, not '{host}' (use 127.0.0.1, or tokens: "
                      "`testledger tokens create`)")
    store().dispose()  # fail here, with one clear line, when the store cannot be opened
    os.environ[NO_AUTH_ENV] = "1" if no_auth else "0"
    os.environ[HOST_ENV] = host
    uvicorn.run("testledger.server:serve_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=False, server_header=False)
