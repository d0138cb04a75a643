"""`testledger serve` as a real uvicorn process on a free port, on SQLite and PostgreSQL; schemathesis against it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiclient import JUNIT, seed

from servers import serve, stop
from testledger.db.engine import Store


@dataclass
class Live:
    url: str
    tokens: dict[str, str]
    other: str
    run_key: str
    home: Path


@pytest.fixture
def live(store: Store, store_url: str, tmp_path: Path) -> Iterator[Live]:
    home = tmp_path / "serve-home"
    home.mkdir()
    tokens, other, run_key = seed(store, home)
    process, url = serve(home, store_url)
    try:
        yield Live(url, tokens, other, run_key, home)
    finally:
        stop(process)


def test_live_server_answers_over_a_socket(live: Live) -> None:
    auth = {"Authorization": f"Bearer {live.tokens['viewer']}"}
    page = httpx.get(f"{live.url}/api/v1/executions", params={"limit": 50}, headers=auth).json()
    assert [i["execution_id"] for i in page["items"]] == [live.run_key]
    hidden = httpx.get(f"{live.url}/api/v1/executions/{live.run_key}",
                       headers={"Authorization": f"Bearer {live.other}"})
    assert hidden.status_code == 404
    signed = httpx.post(f"{live.url}/api/v1/executions/{live.run_key}/cases/1/log-sign", headers=auth).json()
    assert signed["logUrl"].startswith(live.url)
    log = subprocess.run(signed["curlCommand"], shell=True, capture_output=True, text=True, check=True)
    assert log.stdout.startswith("cart has 3 items")
    files = {"files": ("a.xml", JUNIT.encode(), "application/xml")}
    runner = {"Authorization": f"Bearer {live.tokens['runner']}"}
    ingested = httpx.post(f"{live.url}/api/v1/ingest", data={"pipeline_key": "unit"}, files=files, headers=runner)
    assert ingested.status_code == 201 and ingested.json()["totals"]["tests"] == 3
    assert httpx.get(f"{live.url}/readyz").json()["status"] == "ready"
    assert "testledger_http_requests_total" in httpx.get(f"{live.url}/metrics").text


def test_no_auth_is_refused_off_loopback(cli: Callable[..., Any]) -> None:
    refused = cli("serve", "--host", "0.0.0.0", "--no-auth")
    assert refused.code == 3
    assert "--no-auth is only allowed on a loopback address" in refused.stderr


def test_tokens_commands(cli: Callable[..., Any]) -> None:
    import json

    created = cli("tokens", "create", "--workspace", "WKS", "--role", "runner", "--name", "ci@example.com", "--json")
    token = json.loads(created.stdout)
    assert token["token"].startswith("tl_") and token["role"] == "runner"
    plain = cli("tokens", "create", "--role", "viewer")
    assert plain.stdout.startswith("tl_") and "not shown again" in plain.stderr
    listed = cli("tokens", "list", "--json")
    assert [t["name"] for t in json.loads(listed.stdout)] == ["ci@example.com", "tester"]
    assert token["token"] not in listed.stdout
    assert cli("tokens", "create", "--role", "root").code == 3
    assert cli("tokens", "revoke", str(token["id"])).code == 0
    assert json.loads(cli("tokens", "list", "--json").stdout)[0]["revoked_at"] is not None


def test_schemathesis_finds_no_server_error_or_schema_violation(store: Store, store_url: str, tmp_path: Path) -> None:
    """Every route of the live /openapi.json, fuzzed, on each store: no 5xx, every response as documented."""
    home = tmp_path / "st-home"
    home.mkdir()
    _tokens, _other, run_key = seed(store, home)
    # Real identifiers, so the fuzzer reaches past 404 into each route's own logic.
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\nkey = "{run_key}"\nindex = 1\n')
    process, url = serve(home, store_url, "--no-auth")
    try:
        operations = len([m for p in httpx.get(f"{url}/openapi.json").json()["paths"].values() for m in p])
        result = subprocess.run(
            [shutil.which("schemathesis") or "schemathesis", "--config-file", str(config), "run", f"{url}/openapi.json",
             "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
             "content_type_conformance", "--phases", "examples,coverage,fuzzing", "--max-examples", "25",
             "--workers", "1", "--request-timeout", "20", "--suppress-health-check", "all"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path,  # its cache stays out of the repository
        )
    finally:
        stop(process)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert f"{operations} selected" in result.stdout or f"{operations} total" in result.stdout, result.stdout[-3000:]
