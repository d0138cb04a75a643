"""The pytest plugin records each test as it finishes, into a new run or an open one, and survives crashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SUITE = """
import os, pytest

def test_passes():
    print("hello from the test")

def test_fails():
    assert 1 + 1 == 3

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_setup_error(broken):
    pass

class TestGroup:
    @pytest.mark.parametrize("n", [1, 2])
    def test_param(self, n):
        assert n
"""


def test_results_are_recorded_with_junit_identities(pytester: pytest.Pytester, cli: Any) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("--testledger", "--testledger-pipeline", "unit", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(["testledger: results recorded in run WKS-*"])
    runs = json.loads(cli("runs", "list", "--json").stdout)
    assert len(runs) == 1 and runs[0]["pipeline_key"] == "unit" and runs[0]["result"] == "FAILED"
    shown = json.loads(cli("runs", "show", runs[0]["execution_id"], "--json").stdout)
    cases = {c["name"]: c for c in shown["cases"]}
    assert cases["test_passes"]["status"] == "PASSED" and cases["test_passes"]["classname"] == "test_suite"
    assert cases["test_fails"]["status"] == "FAILED" and "assert (1 + 1) == 3" in cases["test_fails"]["error"]
    assert cases["test_fails"]["failure_category"] == "assertion"
    assert cases["test_skipped"]["status"] == "SKIPPED"
    assert cases["test_setup_error"]["status"] == "ERROR"
    assert "RuntimeError: fixture exploded" in cases["test_setup_error"]["error"]
    assert cases["test_param[2]"]["classname"] == "test_suite.TestGroup"
    assert shown["totals"]["tests"] == 6


def test_a_crashed_session_keeps_finished_results(pytester: pytest.Pytester, cli: Any) -> None:
    # Results are written in batches about every half second: what finished before that is kept.
    pytester.makepyfile(test_crash="""
import os, time
def test_one(): pass
def test_two(): assert False
def test_three():
    time.sleep(2)
    os._exit(3)
def test_four(): pass
""")
    result = pytester.runpytest_subprocess("--testledger", "-p", "no:cacheprovider")
    assert result.ret == 3
    run = json.loads(cli("runs", "list", "--json").stdout)[0]
    assert run["status"] == "RUNNING"  # nobody finished it
    shown = json.loads(cli("runs", "show", run["execution_id"], "--json").stdout)
    assert [(c["name"], c["status"]) for c in shown["cases"]] == [("test_one", "PASSED"), ("test_two", "FAILED")]
    repaired = json.loads(cli("refresh", run["execution_id"], "--json").stdout)  # its process is gone
    assert (repaired["status"], repaired["result"]) == ("COMPLETED", "ERROR")
    assert "is gone" in repaired["error"] and len(repaired["cases"]) == 2


def test_joining_an_open_run_leaves_it_open(pytester: pytest.Pytester, cli: Any) -> None:
    key = cli("runs", "start", "--pipeline", "e2e", "--env", "ci").stdout.strip()
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest_subprocess("--testledger", "--testledger-run", key, "-p", "no:cacheprovider")
    pytester.makepyfile(test_b="def test_b(): pass")
    pytester.runpytest_subprocess("--testledger", "--testledger-run", key, "-p", "no:cacheprovider", "test_b.py")
    shown = json.loads(cli("runs", "show", key, "--json").stdout)
    assert shown["status"] == "RUNNING"
    assert [(c["index"], c["name"]) for c in shown["cases"]] == [(0, "test_a"), (1, "test_b")]
    assert cli("runs", "finish", key).code == 0


def test_plugin_is_inert_without_the_flag(pytester: pytest.Pytester, cli: Any, home: Path) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert json.loads(cli("runs", "list", "--json").stdout) == []


@pytest.mark.parametrize(("args", "says"), [
    (["--testledger-env", "stage"], "unknown environment 'stage'"),
    (["--testledger-run", "WKS-0101-99"], "not found"),
])
def test_a_bad_option_is_one_usage_line(
    pytester: pytest.Pytester, cli: Any, args: list[str], says: str,
) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest_subprocess("--testledger", *args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: testledger: ") and says in errors[0], errors
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_finished_run_cannot_be_joined(pytester: pytest.Pytester, cli: Any) -> None:
    key = cli("runs", "start", "--pipeline", "e2e", "--env", "ci").stdout.strip()
    assert cli("runs", "finish", key).code == 0
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest_subprocess("--testledger", "--testledger-run", key, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.errlines[0] == f"ERROR: testledger: run '{key}' is already completed; pass an open run to " \
        "--testledger-run"
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_an_unreachable_store_is_one_usage_line(
    pytester: pytest.Pytester, home: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESTLEDGER_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/test")
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest_subprocess("--testledger", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: testledger: cannot open the store at "), errors
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_results_are_written_while_a_long_test_runs(pytester: pytest.Pytester, cli: Any) -> None:
    pytester.makepyfile(test_long="""
import json, subprocess, sys, time
def test_quick(): pass
def test_long():
    time.sleep(1.5)
    runs = json.loads(subprocess.check_output([sys.executable, "-m", "testledger", "runs", "list", "--json"]))
    shown = json.loads(subprocess.check_output(
        [sys.executable, "-m", "testledger", "runs", "show", runs[0]["execution_id"], "--json"]))
    assert [c["name"] for c in shown["cases"]] == ["test_quick"]
""")
    pytester.runpytest_subprocess("--testledger", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    run = json.loads(cli("runs", "list", "--json").stdout)[0]
    assert (run["status"], run["result"], run["totals"]["tests"]) == ("COMPLETED", "PASSED", 2)


def test_cancel_ends_a_pytest_run_at_once_and_the_session_goes_on(pytester: pytest.Pytester, cli: Any) -> None:
    pytester.makepyfile(test_cancel="""
import json, subprocess, sys, time
def test_first(): time.sleep(1)
def test_cancels():
    runs = json.loads(subprocess.check_output([sys.executable, "-m", "testledger", "runs", "list", "--json"]))
    said = subprocess.run([sys.executable, "-m", "testledger", "cancel", runs[0]["execution_id"]],
                          capture_output=True, text=True)
    assert said.stdout.strip() == runs[0]["execution_id"] + ": cancelled", said
def test_after(): pass
""")
    result = pytester.runpytest_subprocess("--testledger", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(["testledger: *not recorded*already cancelled*"])
    run = json.loads(cli("runs", "list", "--json").stdout)[0]
    assert run["status"] == "CANCELLED"
    shown = json.loads(cli("runs", "show", run["execution_id"], "--json").stdout)
    assert [c["name"] for c in shown["cases"]] == ["test_first"]
