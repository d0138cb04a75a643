"""The commands added with the API, MCP and analytics answer a user's slip with one line, not silence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_health_refuses_an_unknown_environment_like_every_other_command(cli: Callable[..., Any]) -> None:
    result = cli("health", "--env", "qa")
    assert result.code == 3 and "unknown environment 'qa'" in result.stderr


def test_serve_refuses_a_port_out_of_range(cli: Callable[..., Any]) -> None:
    result = cli("serve", "--port", "70000")
    assert result.code == 2 and "--port" in result.stderr and "Traceback" not in result.stderr


def test_mcp_refuses_an_invalid_workspace_key_before_serving(cli: Callable[..., Any]) -> None:
    result = cli("mcp", "-w", "bad")
    assert result.code == 3 and "invalid workspace key 'bad'" in result.stderr
