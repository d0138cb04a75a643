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


def test_slow_filters_by_environment_and_branch(store: Store, cli: Callable[..., Any]) -> None:
    h = History(store)
    h.run([Outcome("test_migrate", duration_ms=8000.0), Outcome("test_ping", duration_ms=20.0)], env="staging",
          branch="release/2.4")
    h.run([Outcome("test_migrate", duration_ms=90.0), Outcome("test_ping", duration_ms=25.0)], env="prod")

    def slowest(*args: str) -> list[tuple[str, float]]:
        answer = cli("slow", *args, "--json")
        assert answer.code == 0, answer.stderr
        return [(t["test"], t["max_ms"]) for t in json.loads(answer.stdout)["tests"]]

    assert slowest("--env", "staging") == [("app.Tests::test_migrate", 8000.0), ("app.Tests::test_ping", 20.0)]
    assert slowest("--env", "production") == [("app.Tests::test_migrate", 90.0), ("app.Tests::test_ping", 25.0)]
    assert slowest("-b", "release/2.4", "-n", "1") == [("app.Tests::test_migrate", 8000.0)]
    assert slowest("--env", "prod", "--branch", "release/2.4") == []
    table = cli("slow", "-e", "staging", "--branch", "release/2.4").stdout
    assert "test_migrate" in table and "8.0s" in table
    assert "No timed results in the last 7 days." in cli("slow", "--env", "dev").stdout
    bad = cli("slow", "--env", "stage")
    assert bad.code == 3 and "unknown environment 'stage'" in bad.stderr
    assert "raw results" in cli("slow", "--help").stdout


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


JUNIT = """<?xml version="1.0"?>
<testsuite name="api" tests="3">
  <testcase classname="api.Orders" name="test_list" time="0.{n}"/>
  <testcase classname="api.Orders" name="test_create" time="1.5">
    <failure type="AssertionError" message="expected 201 but got 500 for order {n}4711">trace</failure>
  </testcase>
  <testcase classname="api.Orders" name="test_delete" time="0.2">
    <error type="ConnectionRefusedError" message="[Errno 111] Connection refused: 10.0.0.{n}:5432"/>
  </testcase>
</testsuite>
"""


def test_ingested_reports_feed_every_question(store: Store, cli: Callable[..., Any], tmp_path: Any) -> None:
    for n in (1, 2):
        report = tmp_path / f"r{n}.xml"
        report.write_text(JUNIT.format(n=n))
        assert cli("ingest", str(report), "--pipeline", "orders", "--revision", "abc", "--branch", "main").code == 2
    clusters = json.loads(cli("clusters", "--pipeline", "orders", "--json").stdout)
    assert sorted((c["error_type"], c["count"], c["category"]) for c in clusters["clusters"]) == [
        ("AssertionError", 2, "assertion"), ("ConnectionRefusedError", 2, "infrastructure")]
    assert [(d["assertion"], d["infrastructure"]) for d in clusters["categories"]] == [(2, 2)]
    slow = json.loads(cli("slow", "--pipeline", "orders", "--json").stdout)["tests"]
    assert slow[0]["test"] == "api.Orders::test_create" and slow[0]["results"] == 2
    history = json.loads(cli("tests", "history", "api.Orders.test_delete", "--json").stdout)
    assert [r["status"] for r in history["results"]] == ["ERROR", "ERROR"]
