"""The reaper: a small process beside each run's executor that ends the run's case process groups when
the executor dies without doing it itself (`kill -9`, a crash, the machine's OOM killer).

The executor writes `+PGID STARTTIME` when it starts a case group and `-PGID` once the group is gone,
on a pipe whose other end only it holds. When the pipe reaches end-of-file (the executor exited, however
it exited) the reaper kills every group still listed and exits. A parent-death signal cannot do this:
Linux sends it when the parent *thread* exits, the executor starts cases from worker threads, and it
reaches only the direct child, not what the case started in the background.

A group is killed only if it is still the one the executor started: a process ID is not reused while
a group of that ID has members, so the group is ours unless its leader's ID now belongs to a process
with another start time. Standard library only, so it starts fast.
"""

from __future__ import annotations

import os
import signal
import sys
import time

#: How long groups get between SIGTERM and SIGKILL.
GRACE_SECONDS = 2.0


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc), or "" when unknown or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _ours(pgid: int, started: str) -> bool:
    now = start_time(pgid)
    if not now:  # the leader is gone: whatever is left in the group is what the case started
        return True
    return bool(started) and now == started


def _signal(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def reap(groups: dict[int, str], *, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM each of our groups that is still there, SIGKILL those left after `grace`."""
    alive = [g for g, started in groups.items() if _ours(g, started) and _signal(g, signal.SIGTERM)]
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [g for g in alive if _signal(g, 0)]
    for group in alive:
        _signal(group, signal.SIGKILL)


def main() -> None:
    # The terminal's Ctrl-C and hang-up are for the executor; the reaper outlives them to clean up.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    groups: dict[int, str] = {}
    for line in sys.stdin.buffer:
        parts = line.split()
        if not parts:
            continue
        pgid = int(parts[0][1:])
        if parts[0].startswith(b"+"):
            groups[pgid] = parts[1].decode() if len(parts) > 1 else ""
        else:
            groups.pop(pgid, None)
    reap(groups)


if __name__ == "__main__":
    main()
