"""The MCP server as an agent meets it: the SDK's real client spawns `testledger mcp` and talks over stdio."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_session import PIPELINE, run_session, tool_data, tool_error_text


@pytest.fixture
def applied(cli: Callable[..., Any], tmp_path: Path, home: Path) -> Path:
    path = tmp_path / "checkout.yaml"
    path.write_text(PIPELINE)
    assert cli("pipelines", "apply", str(path)).code == 0
    return home


def test_agent_runs_waits_finds_the_failure_and_reads_its_log(applied: Path) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async def body(client: Client) -> None:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"list_executions", "get_execution", "get_execution_case", "refresh_execution",
                "execute_pipeline", "cancel_execution", "get_pipeline", "list_pipelines", "get_case_log",
                "wait_for_execution"} <= tools

        started = tool_data(await client.call_tool("execute_pipeline", {"pipeline_key": "checkout"}))
        key = started["execution_id"]
        done = tool_data(await client.call_tool("wait_for_execution", {"execution_id": key, "timeout_s": 60},
                                            progress_callback=on_progress))
        assert (done["status"], done["result"]) == ("COMPLETED", "FAILED")
        assert [c["case_key"] for c in done["cases"]] == ["broken"]
        index = done["cases"][0]["index"]

        case = tool_data(await client.call_tool("get_execution_case", {"execution_id": key, "case_index": index}))
        assert case["status"] == "FAILED" and case["failure_category"] in ("assertion", "error")

        window = tool_data(await client.call_tool("get_case_log", {
            "execution_id": key, "case_index": index, "mode": "error", "max_bytes": 2048}))
        assert "AssertionError: expected total 42, got 41" in window["content"]
        assert window["total_bytes"] > 10_000 and len(window["content"].encode()) <= 2048
        assert window["matches"][0]["text"] == "AssertionError: expected total 42, got 41"

        found = tool_data(await client.call_tool("get_case_log", {
            "execution_id": key, "case_index": index, "mode": "search", "query": "tearing down step 300"}))
        assert [m["text"] for m in found["matches"]] == ["tearing down step 300"]

        tail = tool_data(await client.call_tool("get_case_log", {"execution_id": key, "case_index": index,
                                                              "max_bytes": 100}))
        assert tail["content"].endswith("tearing down step 300\n") and tail["end"] == tail["total_bytes"]

    run_session(applied, body)
    assert seen and seen[-1] == 3


def test_unknown_keys_are_tool_errors_that_name_the_closest(applied: Path) -> None:
    async def body(client: Client) -> None:
        started = tool_data(await client.call_tool("execute_pipeline", {"pipeline_key": "checkout"}))
        key = started["execution_id"]
        await client.call_tool("wait_for_execution", {"execution_id": key, "timeout_s": 60})

        wrong = key[:-1] + ("9" if key[-1] != "9" else "8")
        text = tool_error_text(await client.call_tool("get_execution", {"execution_id": wrong}))
        assert f"run '{wrong}' not found" in text and key in text

        text = tool_error_text(await client.call_tool("execute_pipeline", {"pipeline_key": "checkuot"}))
        assert "checkuot" in text and "closest: checkout" in text

        text = tool_error_text(await client.call_tool("get_case_log", {
            "execution_id": key, "case_index": 0, "mode": "search"}))
        assert "needs a query" in text

        page = tool_data(await client.call_tool("list_executions", {"result": "FAILED", "limit": 5}))
        assert [item["execution_id"] for item in page["items"]] == [key]

    run_session(applied, body)


def test_ingested_results_logs_come_from_their_stored_output(
    cli: Callable[..., Any], tmp_path: Path, home: Path
) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(textwrap.dedent("""\
        <testsuite name="api" tests="1" failures="1">
          <testcase classname="api.Login" name="test_token" time="0.1">
            <failure message="boom" type="AssertionError">trace</failure>
            <system-out>connecting to db
        token refused: 401</system-out>
          </testcase>
        </testsuite>
        """))
    out = cli("ingest", str(report), "--pipeline", "api", "--json")
    assert out.code == 1, out.stderr
    key = json.loads(out.stdout)["execution_id"]

    async def body(client: Client) -> None:
        log = tool_data(await client.call_tool("get_case_log", {"execution_id": key, "case_index": 0}))
        assert "token refused: 401" in log["content"]
        assert log["total_bytes"] == len(log["content"].encode())

    run_session(home, body)


def test_rerun_failed_cases_says_why_it_cannot(cli: Callable[..., Any], tmp_path: Path, applied: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text('<testsuite name="s"><testcase classname="a" name="b"><failure message="x"/></testcase>'
                      "</testsuite>")
    ingested = json.loads(cli("ingest", str(report), "--pipeline", "api", "--json").stdout)["execution_id"]
    passed = tmp_path / "green.yaml"
    passed.write_text("key: green\ncases:\n  - {key: a, command: 'true'}\n")
    green = json.loads(cli("run", str(passed), "--json").stdout)["execution_id"]

    async def body(client: Client) -> None:
        text = tool_error_text(await client.call_tool("rerun_failed_cases", {"execution_id": ingested}))
        assert f"run '{ingested}' was ingested from reports" in text and "rerun its tests where" in text
        text = tool_error_text(await client.call_tool("rerun_failed_cases", {"execution_id": green}))
        assert text.endswith(f"run '{green}' has nothing to rerun: all 1 of its cases passed")
        wrong = green[:-1] + ("9" if green[-1] != "9" else "8")
        text = tool_error_text(await client.call_tool("rerun_failed_cases", {"execution_id": wrong}))
        assert f"run '{wrong}' not found" in text and green in text
        page = tool_data(await client.call_tool("list_executions", {}))
        assert len(page["items"]) == 2  # no run was created

    run_session(applied, body)
