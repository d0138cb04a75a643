"""A real MCP SDK client session with `testledger mcp` over stdio, and reading its tool results: what
the MCP tests and the remote-server tests share."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

Session = Callable[[Client], Awaitable[None]]


def run_stdio_session(env: dict[str, str], body: Session, *, cwd: Path | None = None) -> None:
    """Spawn `python -m testledger mcp` with `env` and run `body` against it (two minutes at most)."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "testledger", "mcp"], env=env,
                                   cwd=str(cwd) if cwd else None)

    async def main() -> None:
        with anyio.fail_after(120):
            async with Client(params) as client:
                await body(client)

    anyio.run(main)


def tool_data(result: Any) -> Any:
    """A successful tool call's structured answer (a bare list or value comes wrapped in `result`)."""
    assert not result.is_error, result.content
    content = result.structured_content
    return content["result"] if isinstance(content, dict) and set(content) == {"result"} else content


def tool_error_text(result: Any) -> str:
    """A failed tool call's message."""
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)
