"""Watching real processes in tests: which of a set are still alive, and what they run."""

from __future__ import annotations

import psutil


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
