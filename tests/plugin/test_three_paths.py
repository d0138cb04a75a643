"""The same tests get the same statuses and categories through `ingest`, the pytest plugin and the
`pytest:` case kind; a test's own failure never turns a run into ERROR."""

from __future__ import annotations

import json
from typing import Any

import pytest

MIXED = """
import pytest

def test_ok():
    pass

def test_assert():
    assert 1 + 1 == 3

def test_assert_mentions_refused():
    raise AssertionError("health check failed: Connection refused")

def test_runtime():
    raise RuntimeError("boom")

def test_refused():
    raise ConnectionRefusedError(111, "Connection refused")

def test_timeout():
    raise TimeoutError("slow")

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_setup_error(broken):
    pass

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""

EXPECTED = {
    "test_ok": ("PASSED", None),
    "test_assert": ("FAILED", "assertion"),
    "test_assert_mentions_refused": ("FAILED", "assertion"),
    "test_runtime": ("FAILED", "error"),
    "test_refused": ("FAILED", "infrastructure"),
    "test_timeout": ("FAILED", "timeout"),
    "test_setup_error": ("ERROR", "error"),
    "test_skipped": ("SKIPPED", None),
}


def _outcomes(cli: Any, key: str) -> tuple[dict[str, Any], dict[str, tuple[str, str | None]]]:
    run = json.loads(cli("runs", "show", key, "--json").stdout)
    tests = {c["name"]: (c["status"], c["failure_category"]) for c in run["cases"] if c["name"] in EXPECTED}
    return run, tests


def test_ingest_plugin_and_case_kind_agree(pytester: pytest.Pytester, cli: Any) -> None:
    pytester.makepyfile(test_mixed=MIXED)
    report = pytester.path / "junit.xml"
    pytester.runpytest_subprocess(f"--junitxml={report}", "-p", "no:cacheprovider")
    ingested = cli("ingest", str(report), "--pipeline", "via-ingest", "--env", "ci", "--json")
    assert ingested.code == 1, ingested.stderr  # failed, not error: every failure here is a test's own
    via_ingest = json.loads(ingested.stdout)["execution_id"]

    pytester.runpytest_subprocess("--testledger", "--testledger-pipeline", "via-plugin", "-p", "no:cacheprovider")
    via_plugin = next(r["execution_id"] for r in json.loads(cli("runs", "list", "--json").stdout)
                      if r["pipeline_key"] == "via-plugin")

    pipeline = pytester.path / "pipeline.yaml"
    pipeline.write_text("key: via-kind\ncases:\n  - key: unit\n"
                        "    pytest: {target: test_mixed.py, args: ['-p', 'no:cacheprovider']}\n")
    ran = cli("run", str(pipeline), "--json")
    assert ran.code == 1, ran.stderr
    via_kind = json.loads(ran.stdout)["execution_id"]

    for key in (via_ingest, via_plugin, via_kind):
        run, tests = _outcomes(cli, key)
        assert tests == EXPECTED, key
        assert (run["result"], run["totals"]["tests"]) == ("FAILED", len(EXPECTED)), key
