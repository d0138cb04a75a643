"""Steering runs from another process: cancel, refresh after the executor died, and logs --follow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

SLOW = """\
key: slow
parallelism: 2
cases:
  - {key: quick, command: echo quick}
  - {key: sleeper, command: "echo started; sleep 30"}
  - {key: sleeper-2, command: "sleep 30"}
  - {key: never, command: "true"}
"""


def _run_key(waiter: Callable[..., Any], cli: Any, *, started: int) -> str:
    """Wait until a run of `slow` has `started` finished cases; return its key."""

    def ready() -> str | None:
        listed = cli("runs", "list", "--json")
        runs = json.loads(listed.stdout) if listed.code == 0 else []
        if runs and runs[0]["status"] == "RUNNING" and runs[0]["totals"]["tests"] >= started:
            return str(runs[0]["execution_id"])
        return None

    return str(waiter(ready, what="the run to start"))


def _descendants(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    try:
        children: list[psutil.Process] = psutil.Process(proc.pid).children(recursive=True)
        return children
    except psutil.NoSuchProcess:
        return []


def _gone(processes: list[psutil.Process]) -> bool:
    return all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in processes)


def test_cancel_from_another_process_keeps_finished_results(
    fast: Path, cli: Any, spawn: Callable[..., subprocess.Popen[str]], waiter: Callable[..., Any],
    pipeline_file: Callable[..., Path],
) -> None:
    executor = spawn("run", str(pipeline_file(SLOW)), "--json")
    try:
        key = _run_key(waiter, cli, started=1)
        waiter(lambda: len(_descendants(executor)) >= 2, what="the sleepers to start")
        children = _descendants(executor)
        assert cli("cancel", key).stdout.strip().startswith(f"{key}: cancel requested")
        out, err = executor.communicate(timeout=30)
    finally:
        executor.kill()
    assert executor.returncode == 1, err
    run = json.loads(out)
    assert run["status"] == "CANCELLED" and run["test_run_status"] == "cancelled"
    by_key = {c["case_key"]: c for c in run["cases"]}
    assert by_key["quick"]["status"] == "PASSED"
    assert by_key["sleeper"]["status"] == "SKIPPED" and by_key["never"]["status"] == "SKIPPED"
    assert by_key["never"]["error"] == "not run: cancelled"
    assert waiter(lambda: _gone(children), what="the case processes to end")
    again = cli("cancel", key)
    assert again.code == 3 and "already cancelled" in again.stderr


def test_refresh_repairs_a_run_whose_executor_was_killed(
    fast: Path, cli: Any, spawn: Callable[..., subprocess.Popen[str]], waiter: Callable[..., Any],
    pipeline_file: Callable[..., Path],
) -> None:
    executor = spawn("run", str(pipeline_file(SLOW)), "--json")
    try:
        key = _run_key(waiter, cli, started=1)
        waiter(lambda: len(_descendants(executor)) >= 2, what="the sleepers to start")
        orphans = _descendants(executor)
        before = json.loads(cli("refresh", key, "--json").stdout)
        assert before["status"] == "RUNNING"  # alive and beating: nothing to repair
        executor.send_signal(signal.SIGKILL)
        executor.wait(timeout=10)
    finally:
        executor.kill()
        executor.communicate()
    try:
        after = json.loads(cli("refresh", key, "--json").stdout)
    finally:
        for process in orphans:  # the killed executor could not end its cases; clean up after it
            if process.is_running():
                os.killpg(process.pid, signal.SIGKILL) if process.pid == os.getpgid(process.pid) else process.kill()
    assert (after["status"], after["result"], after["test_run_status"]) == ("COMPLETED", "ERROR", "error")
    assert "is gone" in after["error"]
    by_key = {c["case_key"]: c for c in after["cases"]}
    assert by_key["quick"]["status"] == "PASSED"
    for key_ in ("sleeper", "sleeper-2", "never"):
        assert (by_key[key_]["status"], by_key[key_]["failure_category"]) == ("ERROR", "infrastructure")


def test_logs_follow_prints_until_the_case_ends(
    sqlite_only: Path, local_cli: Any, spawn: Callable[..., subprocess.Popen[str]], waiter: Callable[..., Any],
    pipeline_file: Callable[..., Path],
) -> None:
    path = pipeline_file("""\
        key: talk
        cases:
          - {key: talker, command: "for i in 1 2 3; do echo line $i; sleep 0.2; done"}
        """)
    executor = spawn("run", str(path))
    try:
        key = _run_key(waiter, local_cli, started=0)
        followed = local_cli("logs", key, "--case", "0", "--follow")
        executor.communicate(timeout=30)
    finally:
        executor.kill()
    assert followed.stdout.splitlines() == ["line 1", "line 2", "line 3"]
