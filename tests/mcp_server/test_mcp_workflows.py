"""The six common workflows of the execution seed, each scripted through the real MCP client over stdio,
with the number of tool calls each takes (docs/mcp.md lists them; the seed needed 3-5 and a curl)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_session import PIPELINE, run_session, tool_data

STUCK = """\
key: stuck
cases:
  - key: hangs
    command: sleep 30
"""


class Agent:
    """Counts the tool calls a workflow makes, the way an agent's transcript would."""

    def __init__(self, client: Client) -> None:
        self.client, self.calls = client, 0

    async def call(self, name: str, **arguments: Any) -> Any:
        self.calls += 1
        return tool_data(await self.client.call_tool(name, arguments))


@pytest.fixture
def applied(cli: Callable[..., Any], tmp_path: Path, home: Path) -> Path:
    for name, text in (("checkout.yaml", PIPELINE), ("stuck.yaml", STUCK)):
        (tmp_path / name).write_text(text)
        assert cli("pipelines", "apply", str(tmp_path / name)).code == 0
    return home


def _finished_run(home: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "testledger", "run", "checkout", "--json"], cwd=home,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    return str(json.loads(out.stdout)["execution_id"])


def test_1_monitor_a_running_execution_takes_two_calls(applied: Path) -> None:
    async def body(client: Client) -> None:
        agent = Agent(client)
        key = (await agent.call("execute_pipeline", pipeline_key="checkout"))["execution_id"]
        final = await agent.call("wait_for_execution", execution_id=key, timeout_s=60)
        assert final["status"] == "COMPLETED" and final["totals"]["tests"] == 3
        assert agent.calls == 2

    run_session(applied, body)


def test_2_investigate_a_failed_execution_takes_two_calls(applied: Path) -> None:
    key = _finished_run(applied)

    async def body(client: Client) -> None:
        agent = Agent(client)
        summary = await agent.call("get_execution", execution_id=key, only_failed=True)
        failed = summary["cases"][0]
        assert failed["case_key"] == "broken" and failed["failure_category"] and failed["error"]
        window = await agent.call("get_case_log", execution_id=key, case_index=failed["index"], mode="error")
        assert "AssertionError: expected total 42, got 41" in window["content"]
        assert agent.calls == 2

    run_session(applied, body)


def test_3_find_recent_failures_takes_one_call(applied: Path) -> None:
    key = _finished_run(applied)

    async def body(client: Client) -> None:
        agent = Agent(client)
        page = await agent.call("list_executions", result="FAILED", date_from="2020-01-01T00:00:00Z", limit=10)
        assert [(r["execution_id"], r["totals"]["failed"] + r["totals"]["errors"]) for r in page["items"]] == [(key, 1)]
        assert agent.calls == 1

    run_session(applied, body)


def test_4_check_pipeline_health_takes_one_call(applied: Path) -> None:
    _finished_run(applied)

    async def body(client: Client) -> None:
        agent = Agent(client)
        report = await agent.call("pipeline_health", pipeline_key="checkout", days=7)
        [group] = report["groups"]
        assert (group["runs"], group["passed"], group["failed"], group["pass_rate"]) == (1, 0, 1, 0.0)
        assert agent.calls == 1

    run_session(applied, body)


def test_an_agent_explains_a_failure_and_quarantines_the_test_in_two_calls(applied: Path) -> None:
    first, second = _finished_run(applied), _finished_run(applied)

    async def body(client: Client) -> None:
        agent = Agent(client)
        explained = await agent.call("explain_failure", execution_id=second, case_index=1)
        assert explained["status"] == "FAILED" and explained["failing_since"] == first
        assert "AssertionError: expected total 42, got 41" in explained["log"]["content"]
        assert [r["execution_id"] for r in explained["recent"]] == [second, first]
        assert not explained["passed_recently"] and not explained["quarantined"]
        added = await agent.call("quarantine_test", test=explained["test"], owner="qa@example.com",
                                 reason="fails since the cart change", expires_at="2030-01-01T00:00:00Z")
        assert added["owner"] == "qa@example.com" and agent.calls == 2
        again = await agent.call("explain_failure", execution_id=second, case_index=1)
        assert again["quarantined"]

    run_session(applied, body)


def test_an_agent_reruns_the_failed_cases_and_waits_in_two_calls(applied: Path) -> None:
    key = _finished_run(applied)

    async def body(client: Client) -> None:
        agent = Agent(client)
        started = await agent.call("rerun_failed_cases", execution_id=key)
        assert started["rerun_of"] == key and started["execution_id"] != key
        assert started["note"].startswith(f"reruns 1 cases of {key}: broken (failed)")
        final = await agent.call("wait_for_execution", execution_id=started["execution_id"], timeout_s=60)
        assert [(c["case_key"], c["status"]) for c in final["cases"]] == [("broken", "FAILED")]
        assert (final["rerun_of"], final["totals"]["tests"], agent.calls) == (key, 1, 2)

    run_session(applied, body)


def test_5_troubleshoot_a_stuck_execution_takes_one_call(applied: Path) -> None:
    runner = subprocess.Popen([sys.executable, "-m", "testledger", "run", "stuck"], cwd=applied,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        key = _wait_for_running(applied)
        os.kill(runner.pid, signal.SIGKILL)  # the executor dies without a word
        runner.wait(10)

        async def body(client: Client) -> None:
            agent = Agent(client)
            repaired = await agent.call("refresh_execution", execution_id=key)
            assert (repaired["status"], repaired["result"]) == ("COMPLETED", "ERROR")
            assert "is gone" in repaired["error"]
            assert agent.calls == 1

        run_session(applied, body)
    finally:
        with _quiet():
            os.killpg(runner.pid, signal.SIGKILL)


def test_6_view_case_logs_takes_one_call(applied: Path) -> None:
    key = _finished_run(applied)

    async def body(client: Client) -> None:
        agent = Agent(client)
        log = await agent.call("get_case_log", execution_id=key, case_index=1, mode="error")
        assert "AssertionError: expected total 42, got 41" in log["content"]
        assert agent.calls == 1

    run_session(applied, body)


def _wait_for_running(home: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-m", "testledger", "runs", "list", "--json"], cwd=home,
                             capture_output=True, text=True, timeout=30)
        listed = json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else []
        items = listed["items"] if isinstance(listed, dict) else listed
        if items and items[0]["status"] == "RUNNING":
            return str(items[0]["execution_id"])
        time.sleep(0.2)
    raise AssertionError("the run never started")


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is ProcessLookupError
