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
    pytester.makepyfile(test_crash="""
import os
def test_one(): pass
def test_two(): assert False
def test_three(): os._exit(3)
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
