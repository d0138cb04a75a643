"""Hostile reports against ingest: huge one-line messages, many failures of one test, look-alike files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

Cli = Callable[..., Any]


def _one_failure(message: str) -> str:
    """A CTRF report of one failed test with a one-line `message` and 3 MB of output."""
    test = {"name": "big", "suite": "c", "status": "failed", "duration": 1, "message": message,
            "trace": "trace", "stdout": ["o" * (3 << 20)]}
    return json.dumps({"results": {"tool": {"name": "t"}, "summary": {"tests": 1}, "tests": [test]}})


def test_a_10_mb_one_line_message_is_stored_capped_and_summarised_quickly(
    cli: Cli, tmp_path: Path, store_url: str
) -> None:
    report = tmp_path / "huge.json"
    report.write_text(_one_failure("x" * (10 << 20)))
    started = time.monotonic()
    result = cli("ingest", str(report), "-p", "unit")
    elapsed = time.monotonic() - started
    assert result.code == 1, result.stderr
    assert elapsed < 30, f"ingest and summary of a 10 MB message took {elapsed:.1f} s"
    # The summary names the failure on one bounded line, not 10 MB of text wrapped to the terminal.
    failure_lines = [line for line in result.stdout.splitlines() if "big" in line and "✗" in line]
    assert len(failure_lines) == 1 and len(failure_lines[0]) < 300
    assert len(result.stdout) < 2000
    engine = create_engine(store_url)
    with engine.connect() as conn:
        message, stdout = conn.execute(text("SELECT message, stdout FROM case_results")).one()
    engine.dispose()
    assert len(message.encode()) <= 64 * 1024 and message.startswith("xxx")
    assert message.endswith(f"… [truncated {(10 << 20) - len(message.split('…')[0]):,} bytes]")
    assert len(stdout.encode()) <= 1 << 20 and "[truncated" in stdout


def test_the_text_limits_are_configurable(cli: Cli, tmp_path: Path, store_url: str, monkeypatch: Any) -> None:
    from testledger.settings import get_settings

    monkeypatch.setenv("TESTLEDGER_MAX_MESSAGE_BYTES", "1000")
    get_settings.cache_clear()
    report = tmp_path / "r.json"
    report.write_text(_one_failure("y" * 5000))
    key = json.loads(cli("ingest", str(report), "-p", "unit", "--json", "--no-fail").stdout)["execution_id"]
    shown = json.loads(cli("runs", "case", key, "0", "--json").stdout)
    assert len(shown["message"].encode()) <= 1000 and shown["message"].endswith("bytes]")


def test_20k_failures_of_one_test_ingest_in_seconds_with_bounded_attempts(cli: Cli, tmp_path: Path) -> None:
    entries = '<testcase classname="c" name="same"><failure message="no"/></testcase>' * 20_000
    report = tmp_path / "same.xml"
    report.write_text(f"<testsuite>{entries}</testsuite>")
    started = time.monotonic()
    result = cli("ingest", str(report), "-p", "unit", "--json", "--no-fail")
    elapsed = time.monotonic() - started
    assert result.code == 0, result.stderr
    assert elapsed < 20, f"20,000 failures of one test took {elapsed:.1f} s"
    run = json.loads(result.stdout)
    assert run["totals"]["tests"] == 1 and run["totals"]["failed"] == 1
    case = json.loads(cli("runs", "case", run["execution_id"], "0", "--json").stdout)
    assert case["attempts"] == 20_000
    assert len(case["attempt_details"]) == 50


def test_files_with_the_same_content_under_different_names_are_all_stored(cli: Cli, tmp_path: Path) -> None:
    body = '<testsuite><testcase classname="c" name="t"/></testsuite>'
    for i in range(9):
        (tmp_path / f"shard{i}.xml").write_text(body)
    result = cli("ingest", str(tmp_path), "-p", "unit", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["tests"] == 9
    again = cli("ingest", str(tmp_path / "shard0.xml"), str(tmp_path / "shard1.xml"), "-p", "unit")
    assert "already ingested" not in again.stdout


def test_partial_over_many_empty_files_says_none_could_be_read(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    for i in range(200):
        (folder / f"e{i:03}.xml").write_bytes(b"")
    result = cli("ingest", str(folder), "-p", "unit", "--partial")
    assert result.code == 3
    assert "already ingested" not in result.stdout + result.stderr
    assert "no report could be read" in result.stderr
    assert "and 197 more" in result.stderr and len(result.stderr.splitlines()) == 1


def test_results_recorded_by_executors_and_the_plugin_are_capped_too(store: Any) -> None:
    from testledger.db import records
    from testledger.db.rows import NewCase, NewResult
    from testledger.services import runs

    case = NewCase(id=42, identity="pytest::t", kind="reported", name="t")
    huge = NewResult(idx=0, case=case, status="failed", message="m" * (5 << 20), error_type="E" * 1000,
                     stderr="e" * (3 << 20), attempts=[{"status": "failed", "stdout": "o" * (3 << 20)}])
    with store.write() as db:
        run = records.create_run(db, workspace="WKS", actor="me", environment="ci", allowed_environments=["ci"],
                                 started=True)
        records.record_results(db, run=run, results=[huge])
        key = run.key
    with store.read() as db:
        stored = runs.get_case(db, workspace="WKS", key=key, index=0)
    assert stored.message is not None and len(stored.message.encode()) <= 64 * 1024
    assert stored.message.endswith("bytes]")
    assert stored.stderr is not None and len(stored.stderr.encode()) <= 1 << 20
    assert stored.error_type is not None and len(stored.error_type) <= 255
