"""The analytics commands as a user runs them: tables, --json, filters and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from history_factory import History, Outcome

from testledger.db.engine import Store


def test_analytics_commands_print_tables_and_json(store: Store, cli: Callable[..., Any]) -> None:
    h = History(store)
    base = h.run([Outcome("test_login"), Outcome("test_pay", duration_ms=50.0)], revision="abc")
    run = h.run([Outcome("test_login", "failed", error_type="AssertionError", message="expected 200, got 503"),
                 Outcome("test_pay", duration_ms=60.0)], revision="abc")
    health = cli("health", "--pipeline", "api", "--env", "ci", "--branch", "main", "--days", "7")
    assert health.code == 0 and "api" in health.stdout and "50.0%" in health.stdout
    assert json.loads(cli("health", "--json").stdout)["groups"][0]["runs"] == 2
    flaky = cli("flaky", "--json")
    assert [t["test"] for t in json.loads(flaky.stdout)["tests"]] == ["app.Tests::test_login"]
    assert "app.Tests::test_login" in cli("flaky").stdout
    clusters = json.loads(cli("clusters", "--json").stdout)["clusters"]
    assert clusters[0]["pattern"] == "expected <n>, got <n>"
    set_it = cli("clusters", str(clusters[0]["id"]), "--category", "infrastructure")
    assert set_it.code == 0 and "infrastructure" in set_it.stdout
    assert "infrastructure*" in cli("clusters").stdout
    compare = cli("compare", run, base)
    assert compare.code == 0 and "new failure" in compare.stdout and "test_login" in compare.stdout
    assert json.loads(cli("compare", run, "--json").stdout)["base"] == base
    assert "test_pay" in cli("slow", "--days", "3").stdout
    history = cli("tests", "history", "app.Tests.test_login")
    assert history.code == 0 and run in history.stdout and "FAILED" in history.stdout


def test_quarantine_commands(store: Store, cli: Callable[..., Any]) -> None:
    History(store).run([Outcome("test_token", "failed", classname="api.Login")])
    added = cli("quarantine", "add", "api.Login::test_token", "--pipeline", "api", "--owner", "qa@example.com",
                "--reason", "flaky on CI", "--expires", "14d")
    assert added.code == 0 and "api.Login::test_token quarantined until" in added.stdout
    listed = json.loads(cli("quarantine", "list", "--json").stdout)
    assert [(q["test"], q["owner"], q["active"]) for q in listed] == [("api.Login::test_token", "qa@example.com", True)]
    assert cli("quarantine", "remove", "api.Login::test_token").code == 0
    assert "No tests are quarantined." in cli("quarantine", "list").stdout


def test_user_errors_are_one_line(store: Store, cli: Callable[..., Any]) -> None:
    History(store).run([Outcome("test_a")])
    missing = cli("tests", "history", "app.Tests::nope")
    assert missing.code == 4 and missing.stderr.count("\n") == 1 and "no test named" in missing.stderr
    bad = cli("health", "--days", "0")
    assert bad.code == 3 and "--days must be between 1 and 366" in bad.stderr
    half = cli("clusters", "--category", "timeout")
    assert half.code == 3 and "give both" in half.stderr
