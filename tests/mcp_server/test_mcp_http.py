"""The MCP server over streamable HTTP, mounted at /mcp in a real `testledger serve`, behind the API's tokens."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_session import PIPELINE, tool_data, tool_error_text

from servers import serve, stop
from testledger.db.engine import Store
from testledger.pipelinefile import parse_pipeline
from testledger.services.pipelines import apply_pipeline
from testledger.services.tokens import create_token


@dataclass
class Server:
    url: str
    tokens: dict[str, str]


@pytest.fixture
def server(store: Store, store_url: str, tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "serve-home"
    home.mkdir()
    document = parse_pipeline(PIPELINE, filename="checkout.yaml")
    with store.write() as db:
        apply_pipeline(db, workspace="WKS", document=document, actor="admin")
        tokens = {
            role: create_token(db, workspace="WKS", role=role, name=f"{role}@example.com", actor="admin").token
            for role in ("viewer", "runner")
        }
        tokens["other"] = create_token(db, workspace="OTHER", role="runner", name="o@example.com",
                                       actor="admin").token
    process, url = serve(home, store_url, "--workers", "1")
    try:
        yield Server(url, tokens)
    finally:
        stop(process)


def _session(server: Server, token: str | None, body: Callable[[Client], Awaitable[None]]) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def main() -> None:
        with anyio.fail_after(120):
            async with httpx2.AsyncClient(headers=headers, timeout=60) as http, Client(
                streamable_http_client(f"{server.url}/mcp", http_client=http)
            ) as client:
                await body(client)

    anyio.run(main)


def test_an_agent_runs_a_pipeline_and_fetches_the_signed_log_with_the_curl_headers(server: Server) -> None:
    found: dict[str, Any] = {}

    async def body(client: Client) -> None:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"execute_pipeline", "wait_for_execution", "get_case_log", "log_sign"} <= tools
        key = tool_data(await client.call_tool("execute_pipeline", {"pipeline_key": "checkout"}))["execution_id"]
        done = tool_data(await client.call_tool("wait_for_execution", {"execution_id": key, "timeout_s": 60}))
        assert (done["status"], done["result"], done["triggered_by"]) == ("COMPLETED", "FAILED", "runner@example.com")
        index = done["cases"][0]["index"]
        window = tool_data(await client.call_tool("get_case_log", {
            "execution_id": key, "case_index": index, "mode": "error"}))
        assert "AssertionError: expected total 42, got 41" in window["content"]
        found.update(tool_data(await client.call_tool("log_sign", {"execution_id": key, "case_index": index})))

    _session(server, server.tokens["runner"], body)
    assert found["logUrl"].startswith(f"{server.url}/api/v1/logs/") and "X-Sign" in found["curlCommand"]
    log = httpx.get(found["logUrl"], headers={"X-Sign": found["sign"], "X-Operator-Id": found["operatorId"]})
    assert log.status_code == 200 and "tearing down step 300" in log.text
    curl = subprocess.run(found["curlCommand"], shell=True, capture_output=True, text=True, timeout=30)
    assert "AssertionError: expected total 42, got 41" in curl.stdout


def test_a_token_sees_only_its_workspace_and_its_role(server: Server) -> None:
    keys: list[str] = []

    async def as_runner(client: Client) -> None:
        key = tool_data(await client.call_tool("execute_pipeline", {"pipeline_key": "checkout"}))["execution_id"]
        await client.call_tool("wait_for_execution", {"execution_id": key, "timeout_s": 60})
        keys.append(key)

    async def as_other(client: Client) -> None:
        assert "not found" in tool_error_text(await client.call_tool("get_execution", {"execution_id": keys[0]}))
        assert "not found" in tool_error_text(await client.call_tool("get_case_log", {
            "execution_id": keys[0], "case_index": 0}))
        assert "not found" in tool_error_text(await client.call_tool("list_executions", {"workspace": "WKS"}))
        assert tool_data(await client.call_tool("list_executions", {}))["items"] == []
        assert "not found" in tool_error_text(await client.call_tool("execute_pipeline", {"pipeline_key": "checkout"}))
        assert "not found" in tool_error_text(await client.call_tool("rerun_failed_cases", {"execution_id": keys[0]}))

    async def as_viewer(client: Client) -> None:
        assert tool_data(await client.call_tool("get_execution", {"execution_id": keys[0]}))["result"] == "FAILED"
        text = tool_error_text(await client.call_tool("execute_pipeline", {"pipeline_key": "checkout"}))
        assert "needs the runner role" in text
        assert "needs the runner role" in tool_error_text(await client.call_tool("cancel_execution", {
            "execution_id": keys[0]}))
        assert "needs the runner role" in tool_error_text(await client.call_tool("rerun_failed_cases", {
            "execution_id": keys[0]}))

    _session(server, server.tokens["runner"], as_runner)
    _session(server, server.tokens["other"], as_other)
    _session(server, server.tokens["viewer"], as_viewer)


@pytest.mark.parametrize("token", [None, "tl_not-a-real-token"])
def test_without_a_valid_token_the_mcp_endpoint_answers_401(server: Server, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{server.url}/mcp", headers={**headers, "Accept": "application/json, text/event-stream"},
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
