"""What the MCP tests share: the example pipeline and a real SDK client session over stdio."""

from __future__ import annotations

import os
from pathlib import Path

from mcp_stdio import Session as Session
from mcp_stdio import run_stdio_session
from mcp_stdio import tool_data as tool_data
from mcp_stdio import tool_error_text as tool_error_text

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



def run_session(home: Path, body: Session) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith(("TESTLEDGER_", "PATH", "HOME", "PYTHON"))}
    env["TESTLEDGER_HEARTBEAT_SECONDS"] = "0.2"
    run_stdio_session(env, body, cwd=home)
