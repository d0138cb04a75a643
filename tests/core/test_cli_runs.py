"""The runs, db, ingest and export commands as a user sees them: output, JSON and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FAILING = ('<testsuite name="api"><testcase classname="api.Pay" name="test_pay" time="135">'
           '<failure message="Expected status 200, got 500" type="AssertionError"/></testcase>'
           '<testcase classname="api.Login" name="test_login" time="12"/></testsuite>')


def test_empty_store_lists_nothing(cli: Any) -> None:
    result = cli("runs", "list", "--json")
    assert (result.code, result.stdout.strip()) == (0, "[]")
    assert "No runs found." in cli("runs", "list").stdout


def test_missing_run_is_one_line_and_exit_4(cli: Any) -> None:
    result = cli("runs", "show", "X")
    assert result.code == 4
    assert result.stderr == "error: run 'X' not found (run keys look like WKS-0601-12)\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_start_finish_brackets_a_ci_job(cli: Any, tmp_path: Path) -> None:
    start = cli("runs", "start", "--pipeline", "payments", "--env", "staging", "--revision", "abc123")
    assert start.code == 0
    key = start.stdout.strip()
    report = tmp_path / "report.xml"
    report.write_text(FAILING)
    ingest = cli("ingest", str(report), "--run", key, "--json")
    assert ingest.code == 0, ingest.stderr  # the run is still open: no verdict yet
    assert json.loads(ingest.stdout)["status"] == "RUNNING"
    finish = cli("runs", "finish", key, "--json")
    assert finish.code == 1
    shown = json.loads(cli("runs", "show", key, "--json").stdout)
    assert shown["execution_id"] == key and shown["status"] == "COMPLETED" and shown["result"] == "FAILED"
    assert shown["pipeline_key"] == "payments" and shown["environment"] == "staging" and shown["revision"] == "abc123"
    assert shown["totals"] == {"tests": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0, "flaky": 0}
    assert shown["cases"][0] | {"duration_ms": 135000} == shown["cases"][0]
    assert shown["cases"][0]["error"] == "AssertionError: Expected status 200, got 500"
    again = cli("runs", "finish", key)
    assert again.code == 3 and "already completed" in again.stderr


def test_finishing_passed_over_failures_needs_force_and_is_noted(cli: Any, tmp_path: Path) -> None:
    key = cli("runs", "start", "--pipeline", "payments", "--env", "ci").stdout.strip()
    report = tmp_path / "report.xml"
    report.write_text(FAILING)
    assert cli("ingest", str(report), "--run", key).code == 0
    refused = cli("runs", "finish", key, "--result", "passed")
    assert refused.code == 3 and "--force" in refused.stderr and "1 failed" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert json.loads(cli("runs", "show", key, "--json").stdout)["status"] == "RUNNING"  # nothing changed
    forced = cli("runs", "finish", key, "--result", "passed", "--force", "--json")
    assert forced.code == 0
    shown = json.loads(forced.stdout)
    assert shown["result"] == "PASSED"
    assert shown["labels"]["result_override"] == "passed set by tester over failed (1 failed, 0 errors)"
    assert "Result override: passed set by tester over failed" in cli("runs", "show", key).stdout


def test_finishing_with_a_stricter_result_needs_no_force(cli: Any) -> None:
    key = cli("runs", "start", "--pipeline", "build", "--env", "ci").stdout.strip()
    finished = cli("runs", "finish", key, "--result", "failed", "--json")  # e.g. the build broke before tests
    assert finished.code == 1
    note = json.loads(finished.stdout)["labels"]["result_override"]
    assert note == "failed set by tester over skipped (0 failed, 0 errors)"


def test_show_draws_the_execution_tree(cli: Any, tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(FAILING)
    key = json.loads(cli("ingest", str(report), "-p", "payments", "--json", "--no-fail").stdout)["execution_id"]
    out = cli("runs", "show", key).stdout
    assert f"Execution: {key}" in out and "Status: COMPLETED" in out and "Result: FAILED" in out
    assert "Duration: 2m 27s" in out  # the test time the report states
    assert "Case 0: test_pay - FAILED (2m 15s)" in out and "Case 1: test_login - PASSED (12s)" in out
    assert "Expected status 200, got 500" in out


def test_ingest_exit_codes_and_summary(cli: Any, tmp_path: Path) -> None:
    failing, passing = tmp_path / "f.xml", tmp_path / "p.xml"
    failing.write_text(FAILING)
    passing.write_text('<testsuite><testcase classname="a" name="b"/></testsuite>')
    result = cli("ingest", str(failing), "-p", "unit")
    assert result.code == 1 and "1 file, 2 tests: 1 passed, 1 failed, 0 errors, 0 skipped" in result.stdout
    assert cli("ingest", str(failing), "-p", "unit", "--no-fail").code == 0
    passed = cli("ingest", str(passing), "-p", "unit")
    assert passed.code == 0 and "1 file, 1 test: 1 passed, 0 failed, 0 errors, 0 skipped" in passed.stdout
    missing = cli("ingest", str(tmp_path / "nope.xml"), "-p", "unit")
    assert (missing.code, missing.stderr.startswith("error: report file")) == (4, True)
    bad = tmp_path / "bad.xml"
    bad.write_text("<testsuite><testcase>")
    broken = cli("ingest", str(bad), "-p", "unit")
    assert broken.code == 3 and "bad.xml" in broken.stderr and "nothing was stored" in broken.stderr
    assert len(json.loads(cli("runs", "list", "--json").stdout)) == 3
    assert cli("ingest", str(failing)).code == 3  # neither --pipeline nor --run


def test_list_filters_by_status_and_pipeline(cli: Any, tmp_path: Path) -> None:
    failing, passing = tmp_path / "f.xml", tmp_path / "p.xml"
    failing.write_text(FAILING)
    passing.write_text('<testsuite><testcase classname="a" name="b"/></testsuite>')
    cli("ingest", str(failing), "-p", "api")
    cli("ingest", str(passing), "-p", "api")
    cli("ingest", str(passing), "-p", "web")
    failed = json.loads(cli("runs", "list", "--status", "failed", "--json").stdout)
    assert [r["pipeline_key"] for r in failed] == ["api"]
    assert len(json.loads(cli("runs", "list", "-p", "api", "--json").stdout)) == 2
    assert cli("runs", "list", "--from", "yesterday").code == 3


def test_list_shows_status_and_result_as_show_does_with_failed_and_errors_apart(cli: Any, tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text('<testsuite name="api"><testcase classname="a" name="fails"><failure message="x"/></testcase>'
                      '<testcase classname="a" name="errs"><error message="y"/></testcase>'
                      '<testcase classname="a" name="errs2"><error message="z"/></testcase></testsuite>')
    ingested = cli("ingest", str(report), "-p", "api", "--env", "ci", "--json", "--no-fail")
    key = json.loads(ingested.stdout)["execution_id"]
    shown = cli("runs", "show", key).stdout
    assert "Status: COMPLETED" in shown and "Result: FAILED" in shown
    assert "Totals: 3 tests, 0 passed, 1 failed, 2 errors, 0 skipped" in shown
    listed = cli("runs", "list").stdout.splitlines()
    header, row = listed[0].split(), listed[1].split()
    assert header[:9] == ["Run", "Pipeline", "Env", "Status", "Result", "Tests", "Failed", "Errors", "Duration"]
    assert "Created (UTC)" in listed[0]
    assert row[:8] == [key, "api", "ci", "COMPLETED", "FAILED", "3", "1", "2"]


def test_export_to_file(cli: Any, tmp_path: Path) -> None:
    report = tmp_path / "f.xml"
    report.write_text(FAILING)
    key = json.loads(cli("ingest", str(report), "-p", "api", "--json", "--no-fail").stdout)["execution_id"]
    out = tmp_path / "out.xml"
    assert cli("export", key, "--format", "junit", "-o", str(out)).code == 0
    assert 'failures="1"' in out.read_text() and "test_pay" in out.read_text()
    assert cli("export", key, "--format", "html").code == 3


def test_version_and_db_commands(cli: Any) -> None:
    assert cli("--version").stdout.startswith("testledger ")
    assert "already at revision" in cli("db", "upgrade").stdout
    info = json.loads(cli("db", "info", "--json").stdout)
    assert info["revision"] == info["head"]


def test_ingest_summary_names_twenty_failures_and_counts_the_rest(cli: Any, tmp_path: Path) -> None:
    cases = "".join(f'<testcase classname="c" name="t{i}"><failure message="m{i}"/></testcase>' for i in range(25))
    report = tmp_path / "many.xml"
    report.write_text(f"<testsuite>{cases}<testcase classname='c' name='ok'/></testsuite>")
    out = cli("ingest", str(report), "-p", "unit").stdout
    assert out.count("✗") == 20 and "c::t19: m19" in out and "t20" not in out
    assert "… and 5 more" in out


def test_case_shows_one_result_in_full(cli: Any, tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text('<testsuite name="s"><testcase classname="c" name="flaky" time="2">'
                      '<flakyFailure message="first try broke" type="IOError">trace one</flakyFailure>'
                      '<system-out>hello out</system-out></testcase></testsuite>')
    key = json.loads(cli("ingest", str(report), "-p", "unit", "--json").stdout)["execution_id"]
    detail = json.loads(cli("runs", "case", key, "0", "--json").stdout)
    assert detail["status"] == "PASSED" and detail["flaky"] is True and detail["stdout"] == "hello out"
    assert [a["status"] for a in detail["attempt_details"]] == ["FAILED", "PASSED"]
    assert detail["attempt_details"][0]["message"] == "first try broke"
    shown = cli("runs", "case", key, "0").stdout
    assert "attempt 1: FAILED" in shown and "hello out" in shown
    missing = cli("runs", "case", key, "5")
    assert missing.code == 4 and "has no case 5" in missing.stderr


def test_inside_a_ci_job_runs_take_its_commit_and_the_gatekeeper_trigger(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    run = json.loads(cli("runs", "start", "-p", "e2e", "-e", "ci", "--json").stdout)
    assert (run["trigger"], run["revision"], run["branch"]) == ("gatekeeper", "0123abc", "main")
    assert run["build_url"] == "https://github.com/acme/shop/actions/runs/42"
    assert json.loads(cli("runs", "start", "-p", "e2e", "-e", "ci", "--trigger", "api", "--json").stdout)[
        "trigger"] == "api"


def test_unreachable_store_is_exit_5_without_the_password(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from testledger.settings import get_settings

    monkeypatch.setenv("TESTLEDGER_DATABASE_URL", "postgresql+psycopg://tl:hunter2@127.0.0.1:9/test")
    get_settings.cache_clear()
    result = cli("runs", "list")
    assert result.code == 5 and result.stderr.startswith("error: cannot open the store at postgresql")
    assert "hunter2" not in result.stderr and "***" in result.stderr


def _large_report(path: Path, *, cases: int, failing: set[int]) -> Path:
    body = "".join(
        f'<testcase classname="big.T" name="test_{i}" time="0.01">'
        + ('<failure message="boom" type="AssertionError"/>' if i in failing else "") + "</testcase>"
        for i in range(cases)
    )
    path.write_text(f'<testsuite name="big">{body}</testsuite>')
    return path


def test_show_of_a_large_run_lists_failures_and_pages_the_rest(cli: Any, tmp_path: Path) -> None:
    """`runs show` of a run too large to list: its failures, then how to page through every case."""
    report = _large_report(tmp_path / "big.xml", cases=250, failing={17, 240})
    key = json.loads(cli("ingest", str(report), "-p", "big", "--json", "--no-fail").stdout)["execution_id"]
    shown = cli("runs", "show", key)
    assert shown.code == 0
    assert "test_17 - FAILED" in shown.stdout and "test_240 - FAILED" in shown.stdout
    assert "test_18 " not in shown.stdout
    assert "… and 248 more (--all lists them, --cursor 0 pages)" in shown.stdout
    as_json = json.loads(cli("runs", "show", key, "--json").stdout)
    assert [c["index"] for c in as_json["cases"]] == [17, 240]
    assert (as_json["cases_total"], as_json["next_cursor"]) == (250, "0")
    page = cli("runs", "show", key, "--cursor", "0", "--limit", "100")
    assert "Case 0: test_0 - PASSED" in page.stdout and "Case 99: test_99" in page.stdout
    assert "Case 100:" not in page.stdout and "… and more (--all lists them, --cursor 100 pages)" in page.stdout
    last = json.loads(cli("runs", "show", key, "--cursor", "200", "--limit", "100", "--json").stdout)
    assert [c["index"] for c in last["cases"]] == list(range(200, 250)) and last["next_cursor"] is None
    everything = cli("runs", "show", key, "--all")
    assert "Case 249: test_249" in everything.stdout and "--cursor" not in everything.stdout


def test_verbose_logs_what_happens_to_stderr(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from testledger.settings import get_settings

    quiet = cli("runs", "start", "-p", "e2e", "-e", "ci")
    assert quiet.code == 0 and quiet.stderr == ""
    loud = cli("-v", "runs", "start", "-p", "e2e", "-e", "ci")
    key = loud.stdout.strip()
    assert f"INFO testledger.db.records: run {key} created (pipeline e2e, ci, by tester)" in loud.stderr
    assert "DEBUG" not in loud.stderr and "DEBUG testledger.db.engine: store " in cli("-vv", "runs", "list").stderr
    monkeypatch.setenv("TESTLEDGER_LOG_LEVEL", "info")
    get_settings.cache_clear()
    finished = cli("runs", "finish", key)
    assert f"INFO testledger.db.records: run {key} completed (skipped)" in finished.stderr
