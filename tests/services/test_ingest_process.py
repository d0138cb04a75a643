"""The second parsing process: it dies with a killed ingest, leaves no transaction open behind it, and
its own crash is one clear error with nothing stored."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from processes import alive, command_line, ctrl_c_reaches
from testledger.db.engine import Store
from testledger.errors import Invalid
from testledger.ingest import parse_process
from testledger.schemas import IngestOptions
from testledger.services.ingest import ingest_files

CASES = 300_000


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JUnit file of 300,000 cases (about 25 MB): several seconds of ingest on this machine."""
    path = tmp_path_factory.mktemp("big") / "big.xml"
    with path.open("w") as out:
        out.write(f'<?xml version="1.0"?>\n<testsuite name="big" tests="{CASES}">\n')
        for i in range(CASES):
            out.write(f'  <testcase classname="pkg.module{i % 100}.Test" name="test_{i}" time="0.001"/>\n')
        out.write("</testsuite>\n")
    return path


def _small(tmp_path: Path) -> Path:
    path = tmp_path / "small.xml"
    path.write_text('<testsuite name="s"><testcase classname="a.B" name="test_ok" time="0.1"/></testsuite>')
    return path


def _parsers(root: psutil.Process) -> list[psutil.Process]:
    """Processes below `root` that parse: a fork of it, or a child of its fork server (not the server
    itself, nor multiprocessing's resource tracker)."""
    try:
        below = root.children(recursive=True)
        return [p for p in below if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in command_line(p)
                and not ("forkserver" in command_line(p) and p.ppid() == root.pid)]
    except psutil.Error:
        return []


def _descendants(root: psutil.Process) -> list[psutil.Process]:
    try:
        return list(root.children(recursive=True))
    except psutil.Error:
        return []


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["sigkill", "sigterm", "ctrl-c"])
def test_a_killed_ingest_leaves_no_process_and_no_lock_behind(
    sig: signal.Signals, home: Path, big_report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESTLEDGER_PARSE_PROCESS_MIN_BYTES", "0")
    command = [sys.executable, "-m", "testledger", "ingest", "--pipeline", "big"]
    # Files, not pipes: a parse process left alive would hold a pipe open and hide the exit.
    errors = (tmp_path / "stderr").open("w+")
    ingest = subprocess.Popen([*command[:3], "-v", *command[3:], str(big_report)], env=dict(os.environ),
                              stdout=subprocess.DEVNULL, stderr=errors, text=True, preexec_fn=ctrl_c_reaches)
    helpers: list[psutil.Process] = []
    try:
        root = psutil.Process(ingest.pid)
        # The parse process starts with the command, reading ahead; the run's transaction is open once
        # it has its job (logged with -v), and a few 5,000-row batches are written half a second later.
        _wait(lambda: _parsers(root), 30, "the parse process")
        _wait(lambda: " started for 1 file(s)" in (tmp_path / "stderr").read_text(), 30, "the parse job")
        time.sleep(0.5)
        helpers = _descendants(root)
        assert ingest.poll() is None, "the ingest finished before it could be killed: use a larger report"
        ingest.send_signal(sig)
        ingest.wait(timeout=30)
        errors.seek(0)
        err = errors.read()
        _wait(lambda: not alive(helpers), 10, "the parse process to end")
        if sig != signal.SIGKILL:  # stopped, not vanished: it says so and stored nothing
            assert ingest.returncode == 130 and err.strip().splitlines()[-1] == "error: interrupted", err
        again = subprocess.run([*command, str(_small(tmp_path)), "--json"], env=dict(os.environ),
                               capture_output=True, text=True, timeout=60)
    finally:
        ingest.kill()
        errors.close()
        for process in alive(helpers):
            process.kill()
    assert again.returncode == 0, again.stderr
    run = json.loads(again.stdout)
    assert run["totals"]["tests"] == 1
    listed = subprocess.run([sys.executable, "-m", "testledger", "runs", "list", "--json"], env=dict(os.environ),
                            capture_output=True, text=True, timeout=60)
    assert [r["execution_id"] for r in json.loads(listed.stdout)] == [run["execution_id"]]  # nothing of the first


def test_a_crashed_parse_process_is_a_clear_error_and_stores_nothing(
    store: Store, big_report: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parse_process, "available", lambda: True)  # even on one core
    caplog.set_level(logging.INFO, logger=parse_process.__name__)
    me = psutil.Process()
    # What an earlier test of this worker left below it (a process it started, not yet reaped) is not the parser.
    before = {p.pid for p in _descendants(me)}

    def crash() -> None:
        try:
            children = _wait(lambda: [p for p in _parsers(me) if p.pid not in before], 30, "the parse process")
        except AssertionError:
            return
        time.sleep(0.5)
        for child in children:
            child.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=crash)
    killer.start()
    try:
        with pytest.raises(Invalid) as raised, store.write() as db:
            ingest_files(db, workspace="WKS", sources=[big_report], options=IngestOptions(
            actor="tester", max_report_bytes=1 << 30, pipeline_key="big", environment="ci",
            allowed_environments=["ci"], parse_process_min_bytes=0))
    finally:
        killer.join()
    assert str(raised.value) == ("the report parser process (reading big.xml) failed: it was killed by signal 9; "
                                 "nothing was stored")
    with store.read() as db:
        from sqlalchemy import text

        assert db.execute(text("SELECT count(*) FROM test_runs")).scalar() == 0
        assert db.execute(text("SELECT count(*) FROM case_results")).scalar() == 0
    started = [r for r in caplog.records if r.name == parse_process.__name__ and "started" in r.getMessage()]
    assert started and str(os.getpid()) not in started[0].getMessage()


def test_the_parse_process_is_not_a_fork_of_the_ingest(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forked child would inherit this process's database connections and both ends of its pipes."""
    monkeypatch.setattr(parse_process, "available", lambda: True)
    caplog.set_level(logging.INFO, logger=parse_process.__name__)
    report = _small(tmp_path)
    with store.write() as db:
        ingest_files(db, workspace="WKS", sources=[report], options=IngestOptions(
            actor="tester", max_report_bytes=1 << 20, pipeline_key="p", environment="ci",
            allowed_environments=["ci"], parse_process_min_bytes=0))
    parsed = [r.getMessage() for r in caplog.records if "parsed 1 file(s)" in r.getMessage()]
    assert len(parsed) == 1
    child_pid = int(parsed[0].split()[3])
    assert child_pid != os.getpid()
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).ppid() != os.getpid()
