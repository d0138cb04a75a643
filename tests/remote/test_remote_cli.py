"""The CLI against a real server (TESTLEDGER_URL and TESTLEDGER_TOKEN): the same commands, the same output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from remoteserver import PIPELINE, Server, Use

from servers import free_port

Cli = Callable[..., Any]


def both(cli: Cli, use: Use, *args: str, token: str = "viewer") -> tuple[Any, Any]:
    use(None)
    local = cli(*args)
    use(token)
    remote = cli(*args)
    use(None)
    return local, remote


#: Commands whose output must not depend on where the data comes from (one server start for all of them).
SAME = [
    "runs list", "runs list --json", "runs list --status failed --branch main --json",
    "runs show {key}", "runs show {key} --json", "runs show {key} --cursor 0 --limit 1 --json",
    "runs show {key} --all", "runs case {key} 1", "runs case {key} 1 --json", "runs case {key} 9",
    "logs {key} --case 1", "logs {key} --case 2", "export {key}", "export {key} --format ctrf",
    "export {key} --format nope", "pipelines list", "pipelines list --json", "pipelines show unit --json",
    "pipelines show nope", "flaky", "slow", "slow --env ci --branch main", "slow --env staging",
    "clusters", "quarantine list --json",
    "tests history app.Cart::adds --json", "compare {key}", "runs show WKS-0101-99",
]


def test_every_command_prints_the_same_locally_and_from_the_server(cli: Cli, use: Use, server: Server) -> None:
    differ = []
    for command in SAME:
        local, remote = both(cli, use, *command.format(key=server.run_key).split())
        if (remote.code, remote.stdout, remote.stderr) != (local.code, local.stdout, local.stderr):
            differ.append(f"{command}: local {local.code} {local.stdout[:300]!r} {local.stderr!r}; "
                          f"remote {remote.code} {remote.stdout[:300]!r} {remote.stderr!r}")
    assert not differ, "\n".join(differ)


def test_ingest_uploads_and_summarises_like_a_local_ingest(cli: Cli, use: Use, server: Server) -> None:
    use(None)
    local = cli("ingest", "-p", "unit", "--env", "ci", str(server.report))
    use("runner")
    remote = cli("ingest", "-p", "unit", "--env", "ci", str(server.report))
    assert remote.code == local.code == 1
    key = remote.stdout.split()[0]
    assert remote.stdout.replace(key, "KEY") == local.stdout.replace(local.stdout.split()[0], "KEY")
    assert "1 file, 3 tests: 2 passed, 1 failed" in remote.stdout
    opened = cli("runs", "start", "-p", "unit", "--env", "ci").stdout.strip()
    for _ in range(2):  # the same file twice into one open run: stored once (uploads are deterministic)
        into = cli("ingest", "--run", opened, str(server.report), "--json")
        assert into.code == 0 and json.loads(into.stdout)["totals"]["tests"] == 3
    use(None)
    stored = json.loads(cli("runs", "show", key, "--json").stdout)
    assert stored["totals"]["tests"] == 3 and stored["trigger"] == "api"


def test_a_viewer_token_cannot_ingest(cli: Cli, use: Use, server: Server) -> None:
    use("viewer")
    refused = cli("ingest", "-p", "unit", str(server.report))
    assert refused.code == 3
    assert refused.stderr == "error: this needs a runner token; yours is viewer\n"


def test_a_token_of_another_workspace_sees_nothing(cli: Cli, use: Use, server: Server) -> None:
    use("other")
    assert cli("runs", "list").stdout == "No runs found.\n"
    hidden = cli("runs", "show", server.run_key)
    assert hidden.code == 4 and "not found" in hidden.stderr
    assert cli("logs", server.run_key, "--case", "1").code == 4
    assert cli("export", server.run_key).code == 4
    assert json.loads(cli("pipelines", "list", "--json").stdout) == []


def test_a_workspace_named_on_the_command_line_is_asked_for_even_when_it_is_the_default(
    cli: Cli, use: Use, server: Server,
) -> None:
    use("other")
    named = cli("runs", "list", "-w", "WKS")
    assert named.code == 4 and "WKS" in named.stderr and server.run_key not in named.stdout
    assert cli("runs", "list", "-w", "OTHER").stdout == "No runs found.\n"
    use("viewer")
    assert server.run_key in cli("runs", "list", "-w", "WKS").stdout
    assert server.run_key in cli("runs", "list").stdout


def test_an_unreachable_server_is_one_line_with_its_url_and_exit_5(cli: Cli, use: Use, server: Server) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    use("viewer", url=url)
    down = cli("runs", "list")
    assert down.code == 5
    assert down.stderr.startswith(f"error: cannot reach the testledger server at {url} (")
    assert down.stderr.count("\n") == 1 and server.tokens["viewer"] not in down.stderr


def test_a_revoked_or_unknown_token_is_one_line(cli: Cli, use: Use, server: Server) -> None:
    use("tl_not-a-token")
    refused = cli("runs", "list")
    assert refused.code == 3 and refused.stderr.count("\n") == 1
    assert "refused the token" in refused.stderr and "tl_not-a-token" not in refused.stderr


@pytest.mark.parametrize(("present", "missing"), [("TESTLEDGER_URL", "TESTLEDGER_TOKEN"),
                                                   ("TESTLEDGER_TOKEN", "TESTLEDGER_URL")])
def test_only_one_of_url_and_token_is_a_usage_error_naming_the_other(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, present: str, missing: str,
) -> None:
    from testledger.settings import get_settings

    monkeypatch.setenv(present, "http://127.0.0.1:9" if present == "TESTLEDGER_URL" else "tl_secret")
    get_settings.cache_clear()
    half = cli("runs", "list")
    assert half.code == 2
    assert half.stderr.startswith(f"error: {present} is set but {missing} is not") and "tl_secret" not in half.stderr


@pytest.mark.parametrize("command", ["db upgrade", "db info", "tokens list", "serve", "runs delete WKS-0101-1 -y"])
def test_local_only_commands_say_so(cli: Cli, use: Use, server: Server, command: str) -> None:
    use("admin")
    refused = cli(*command.split())
    assert refused.code == 3 and refused.stderr.count("\n") == 1
    assert f"`testledger {' '.join(command.split()[:2] if ' ' in command else [command])}" in refused.stderr
    assert f"works on a local store only, and TESTLEDGER_URL names a server ({server.url})" in refused.stderr


def test_apply_and_run_a_stored_pipeline_on_the_server(cli: Cli, use: Use, server: Server, tmp_path: Path) -> None:
    path = tmp_path / "echo.yaml"
    path.write_text(PIPELINE)
    use("viewer")
    assert cli("pipelines", "apply", str(path)).code == 3  # a viewer manages no pipelines
    use("admin")
    assert cli("pipelines", "validate", str(path)).stdout == f"{path}: ok (pipeline 'echo', 2 cases)\n"
    assert cli("pipelines", "apply", str(path)).stdout == "pipeline WKS/echo: version 1 (2 cases)\n"
    refused = cli("run", str(path))
    assert refused.code == 3 and "pipelines apply" in refused.stderr
    ran = cli("run", "echo")
    assert ran.code == 1
    lines = ran.stdout.splitlines()
    key = lines[0].split()[1].rstrip(":")
    assert lines[0] == f"Run {key}: 2 cases"
    assert sorted(line.split()[1] for line in lines[1:3]) == ["FAILED", "PASSED"]
    assert "Result: FAILED" in ran.stdout
    assert cli("logs", key, "--case", "1").stdout == "about to fail\n"
    local, remote = both(cli, use, "runs", "show", key, "--json")
    assert remote.stdout == local.stdout and json.loads(remote.stdout)["result"] == "FAILED"


def test_a_bad_pipeline_is_reported_by_the_server_with_line_and_column(
    cli: Cli, use: Use, server: Server, tmp_path: Path,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("key: x\ncases:\n  - key: a\n    comand: echo\n")
    use(None)
    local = cli("pipelines", "validate", str(path))
    use("viewer")
    remote = cli("pipelines", "validate", str(path))
    assert remote.code == local.code == 3
    assert remote.stderr.splitlines()[-1] == local.stderr.splitlines()[-1]
    assert remote.stderr.splitlines()[0].startswith(f"{path}:4:")


def test_start_cancel_and_finish_runs_by_hand(cli: Cli, use: Use, server: Server) -> None:
    use("runner")
    key = cli("runs", "start", "-p", "bracket", "--env", "ci").stdout.strip()
    assert cli("cancel", key).stdout == f"{key}: cancelled\n"
    other = cli("runs", "start", "-p", "bracket", "--env", "ci").stdout.strip()
    finished = cli("runs", "finish", other, "--json")
    assert finished.code == 0 and json.loads(finished.stdout)["status"] == "COMPLETED"
    use(None)
    statuses = {r["execution_id"]: r["status"] for r in json.loads(cli("runs", "list", "--json").stdout)}
    assert statuses[key] == "CANCELLED" and statuses[other] == "COMPLETED"
