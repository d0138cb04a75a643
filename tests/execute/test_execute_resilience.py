"""A run survives a busy store, and leaves no case process behind when its executor is killed or stopped."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from processes import alive, command_line
from testledger.settings import get_settings

STEADY = """\
key: steady
parallelism: 1
cases:
  - {key: first, command: "true"}
  - {key: second, command: "sleep 1"}
  - {key: third, command: "sleep 1"}
  - {key: fourth, command: "sleep 1"}
  - {key: fifth, command: "sleep 1"}
"""

LONG = """\
key: long
parallelism: 3
cases:
  - {key: quick, command: echo quick}
  - {key: sleeper, command: "sleep 600"}
  - {key: shell-sleeper, command: "echo started; sleep 600; echo never"}
  - {key: background, command: "sleep 600 & sleep 600"}
"""


def _running_run(waiter: Callable[..., Any], cli: Any, *, finished: int) -> str:
    def ready() -> str | None:
        listed = cli("runs", "list", "--json")
        runs = json.loads(listed.stdout) if listed.code == 0 else []
        if runs and runs[0]["status"] == "RUNNING" and runs[0]["totals"]["tests"] >= finished:
            return str(runs[0]["execution_id"])
        return None

    return str(waiter(ready, what="the run to start"))


@contextmanager
def _write_lock(store_url: str) -> Iterator[None]:
    """Hold the store's write lock from another connection, as a long ingest does."""
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(store_url)
    with engine.connect() as pg:
        pg.execute(text("LOCK TABLE test_runs IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            pg.rollback()
    engine.dispose()


def test_a_run_waits_out_a_store_held_by_another_writer(
    fast: Path, store_url: str, cli: Any, spawn: Callable[..., subprocess.Popen[str]],
    waiter: Callable[..., Any], pipeline_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A short busy timeout stands for an ingest that holds the lock longer than the timeout.
    monkeypatch.setenv("TESTLEDGER_SQLITE_BUSY_TIMEOUT_MS", "200")
    get_settings.cache_clear()
    executor = spawn("run", str(pipeline_file(STEADY)), "--json")
    try:
        _running_run(waiter, cli, finished=1)
        with _write_lock(store_url):
            time.sleep(4)  # several heartbeats and a finished case fall inside
        out, err = executor.communicate(timeout=60)
    finally:
        executor.kill()
    assert executor.returncode == 0, err
    run = json.loads(out)
    assert (run["status"], run["result"]) == ("COMPLETED", "PASSED")
    assert [c["status"] for c in run["cases"]] == ["PASSED"] * 5
    if store_url.startswith("sqlite"):  # PostgreSQL writers queue on the row lock instead of failing
        assert "store is busy" in err  # the executor says why it waited


def _case_processes(executor: subprocess.Popen[str], count: int, waiter: Callable[..., Any]) -> list[psutil.Process]:
    def started() -> list[psutil.Process] | None:
        try:
            found = psutil.Process(executor.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return None
        sleepers = [p for p in found if command_line(p).split()[:1] == ["sleep"]]
        return found if len(sleepers) >= count else None

    return list(waiter(started, what="the case processes to start"))


def _cleanup(processes: list[psutil.Process]) -> None:
    for p in alive(processes):
        p.kill()


def test_no_case_process_outlives_a_killed_executor(
    sqlite_only: Path, local_cli: Any, spawn: Callable[..., subprocess.Popen[str]],
    waiter: Callable[..., Any], pipeline_file: Callable[..., Path],
) -> None:
    executor = spawn("run", str(pipeline_file(LONG)), "--json")
    cases: list[psutil.Process] = []
    try:
        _running_run(waiter, local_cli, finished=1)
        cases = [p for p in _case_processes(executor, 4, waiter) if "testledger" not in command_line(p)]
        executor.send_signal(signal.SIGKILL)
        executor.wait(timeout=10)
        assert waiter(lambda: not alive(cases), timeout=10, what="the case processes to end"), alive(cases)
    finally:
        executor.kill()
        executor.communicate()
        _cleanup(cases)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_stopping_the_executor_cancels_the_run_and_its_cases(
    sig: signal.Signals, fast: Path, cli: Any, spawn: Callable[..., subprocess.Popen[str]],
    waiter: Callable[..., Any], pipeline_file: Callable[..., Path],
) -> None:
    executor = spawn("run", str(pipeline_file(LONG)), "--json")
    cases: list[psutil.Process] = []
    try:
        _running_run(waiter, cli, finished=1)
        cases = [p for p in _case_processes(executor, 4, waiter) if "testledger" not in command_line(p)]
        executor.send_signal(sig)
        out, err = executor.communicate(timeout=30)
        assert waiter(lambda: not alive(cases), timeout=10, what="the case processes to end"), alive(cases)
    finally:
        executor.kill()
        _cleanup(cases)
    assert executor.returncode == 1, err
    run = json.loads(out)
    assert (run["status"], run["test_run_status"]) == ("CANCELLED", "cancelled")
    by_key = {c["case_key"]: c["status"] for c in run["cases"]}
    assert by_key["quick"] == "PASSED"
    assert {by_key[k] for k in ("sleeper", "shell-sleeper", "background")} == {"SKIPPED"}
    stored = json.loads(cli("runs", "show", run["execution_id"], "--json").stdout)
    assert stored["status"] == "CANCELLED" and len(stored["cases"]) == 4


def test_a_wrong_write_is_not_retried(
    sqlite_only: Path, local_cli: Any, pipeline_file: Callable[..., Path],
) -> None:
    """A write that is wrong (not busy) fails at once instead of being retried for minutes."""
    from testledger.db.engine import open_store
    from testledger.db.retry import write_with_retry
    from testledger.errors import Conflict

    store = open_store()
    started = time.monotonic()
    with pytest.raises(Conflict):  # the store's IntegrityError, as the store reports it
        write_with_retry(store, lambda db: db.execute(text("INSERT INTO workspaces (id) VALUES (NULL)")),
                         what="bad insert")
    store.dispose()
    assert time.monotonic() - started < 2
