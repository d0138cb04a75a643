"""`testledger mcp` over stdio with TESTLEDGER_URL and TESTLEDGER_TOKEN set: the tools answer from the server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mcp import Client
from remoteserver import PIPELINE, Server, Use

from mcp_stdio import Session, run_stdio_session
from mcp_stdio import tool_data as data
from mcp_stdio import tool_error_text as error


def session(server: Server, token: str, body: Session) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith(("PATH", "HOME", "PYTHON"))}
    # No local store at all: every answer must come from the server.
    env.update(TESTLEDGER_URL=server.url, TESTLEDGER_TOKEN=server.tokens[token],
               TESTLEDGER_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    run_stdio_session(env, body)


def test_an_agent_works_against_the_server(cli: Any, use: Use, server: Server, tmp_path: Path) -> None:
    path = tmp_path / "echo.yaml"
    path.write_text(PIPELINE)
    use("admin")
    assert cli("pipelines", "apply", str(path)).code == 0
    use(None)

    async def body(client: Client) -> None:
        runs = data(await client.call_tool("list_executions", {}))
        assert [r["execution_id"] for r in runs["items"]] == [server.run_key]
        failed = data(await client.call_tool("get_execution", {"execution_id": server.run_key, "only_failed": True}))
        assert [c["case_key"] for c in failed["cases"]] == ["app.Cart::adds"]
        log = data(await client.call_tool("get_case_log", {"execution_id": server.run_key, "case_index": 1}))
        assert log["content"].startswith("cart has 3 items") and log["total_bytes"] == len(log["content"])
        signed = data(await client.call_tool("log_sign", {"execution_id": server.run_key, "case_index": 1}))
        assert signed["logUrl"].startswith(server.url)
        explained = data(await client.call_tool("explain_failure", {"execution_id": server.run_key,
                                                                     "case_index": 1}))
        assert explained["test"] == "app.Cart::adds" and "expected 2, got 3" in explained["error"]
        health = data(await client.call_tool("pipeline_health", {}))
        assert health["groups"][0]["pipeline_key"] == "unit"

        started = data(await client.call_tool("execute_pipeline", {"pipeline_key": "echo"}))
        done = data(await client.call_tool("wait_for_execution", {"execution_id": started["execution_id"],
                                                                  "timeout_s": 60}))
        assert (done["status"], done["result"]) == ("COMPLETED", "FAILED")
        tail = data(await client.call_tool("get_case_log", {"execution_id": started["execution_id"],
                                                            "case_index": 1}))
        assert tail["content"] == "about to fail\n"
        rerun = data(await client.call_tool("rerun_failed_cases", {"execution_id": started["execution_id"]}))
        assert rerun["rerun_of"] == started["execution_id"] and rerun["execution_id"] != started["execution_id"]
        again = data(await client.call_tool("wait_for_execution", {"execution_id": rerun["execution_id"],
                                                                   "timeout_s": 60}))
        assert again["rerun_of"] == started["execution_id"]
        assert [c["case_key"] for c in again["cases"]] == ["bad"]  # only the failed case ran again
        passed = error(await client.call_tool("rerun_failed_cases", {"execution_id": server.run_key}))
        assert "ingested" in passed  # an ingested run has nothing here to execute
        missing = error(await client.call_tool("get_execution", {"execution_id": "WKS-0101-99"}))
        assert "not found" in missing and server.run_key in missing  # the closest keys, from the server

    session(server, "runner", body)


def test_a_token_of_another_workspace_sees_nothing_and_a_viewer_runs_nothing(server: Server) -> None:
    async def other(client: Client) -> None:
        assert data(await client.call_tool("list_executions", {}))["items"] == []
        hidden = error(await client.call_tool("get_execution", {"execution_id": server.run_key}))
        assert "not found" in hidden

    async def viewer(client: Client) -> None:
        refused = error(await client.call_tool("cancel_execution", {"execution_id": server.run_key}))
        assert "runner" in refused

    session(server, "other", other)
    session(server, "viewer", viewer)
