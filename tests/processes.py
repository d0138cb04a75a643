"""Watching real processes in tests: which of a set are still alive, and what they run."""

from __future__ import annotations

import signal

import psutil


def ctrl_c_reaches() -> None:
    """`preexec_fn` of a command a test stops with Ctrl-C: SIGINT at its default, as a terminal's foreground
    job has it. A test session started in the background (`.ci/run &` from a script) ignores SIGINT, and a
    child inherits that: Python then never raises KeyboardInterrupt, and the test would see no Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running; a zombie (exited, not yet reaped) counts as gone."""
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running


def command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""
