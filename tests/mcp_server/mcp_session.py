"""What the MCP tests share: the example pipeline and a real SDK client session over stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult

PIPELINE = """\
key: checkout
name: Checkout
cases:
  - key: ok
    command: echo all good
  - key: broken
    command: |
      for i in $(seq 1 300); do echo "setting up step $i"; done
      echo "AssertionError: expected total 42, got 41" >&2
      for i in $(seq 1 300); do echo "tearing down step $i"; done
      exit 1
  - key: quiet
    command: "true"
"""

Session = Callable[[Client], Awaitable[None]]


def run_session(home: Path, body: Session) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith(("TESTLEDGER_", "PATH", "HOME", "PYTHON"))}
    env["TESTLEDGER_HEARTBEAT_SECONDS"] = "0.2"
    params = StdioServerParameters(command=sys.executable, args=["-m", "testledger", "mcp"], env=env, cwd=str(home))

    async def main() -> None:
        with anyio.fail_after(120):
            async with Client(params) as client:
                await body(client)

    anyio.run(main)


def tool_data(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    if isinstance(result.structured_content, dict) and set(result.structured_content) == {"result"}:
        return result.structured_content["result"]
    return result.structured_content


def tool_error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)
