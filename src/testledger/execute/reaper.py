"""The reaper: a small process beside each run's executor that ends the run's case process groups when
the executor dies without doing it itself (`kill -9`, a crash, the machine's OOM killer).

The executor writes `+PGID` when it starts a case group, on a pipe whose other end only it holds (the
protocol also takes `+PGID STARTTIME` and `-PGID`, a group that is gone). The reaper reads the pipe
every `DRAIN_SECONDS` and notes each new group leader's start time from /proc then, so neither the
reading nor a wake-up per case takes time from the executor, which starts a case every millisecond when
cases are quick. When the pipe reaches end-of-file (the executor exited, however it exited) the reaper
reads what is left, kills every group still listed and exits. A parent-death signal cannot do this:
Linux sends it when the parent *thread* exits, the executor starts cases from worker threads, and it
reaches only the direct child, not what the case started in the background.

A group is killed only if it is still the one the executor started: a process ID is not reused while
a group of that ID has members, so the group is ours unless its leader's ID now belongs to a process
with another start time. A leader already gone when its line was read has no start time: its group is
killed if members are left, and a process that later took its ID is spared. (A leader's ID reused
before the read would need every process ID the kernel hands out, 32k to 4M, to be used within that
quarter second.) Standard library only, so it starts fast.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

#: How long groups get between SIGTERM and SIGKILL.
GRACE_SECONDS = 2.0
#: How often the executor's lines are read while it lives (its end of the pipe closing wakes the reaper at once).
DRAIN_SECONDS = 0.25


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


def note(lines: bytes, groups: dict[int, str]) -> None:
    """Apply whole `+PGID STARTTIME` / `-PGID` lines to `groups`."""
    for line in lines.splitlines():
        parts = line.split()
        if not parts:
            continue
        pgid = int(parts[0][1:])
        if parts[0].startswith(b"+"):
            groups[pgid] = parts[1].decode() if len(parts) > 1 else start_time(pgid)
        else:
            groups.pop(pgid, None)


def follow(fd: int, groups: dict[int, str], *, drain_seconds: float = DRAIN_SECONDS) -> None:
    """Read the executor's lines from `fd` into `groups` until end-of-file.

    The pipe is read every `drain_seconds`, not as each line arrives: a line waits safely in the pipe
    even after the executor died, and waking this process for every case would take a core's time from
    the cases when they are quick. Only the end of the pipe (every writer gone) wakes it at once."""
    os.set_blocking(fd, False)
    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: poll still returns on hang-up and errors
    partial = b""
    while True:
        ended = bool(poller.poll(drain_seconds * 1000))
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                ended = True
                break
            partial += chunk
            whole, _, partial = partial.rpartition(b"\n")
            note(whole, groups)
        if ended:
            note(partial, groups)
            return


def main() -> None:
    # The terminal's Ctrl-C and hang-up are for the executor; the reaper outlives them to clean up.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    groups: dict[int, str] = {}
    follow(sys.stdin.fileno(), groups)
    reap(groups)


if __name__ == "__main__":
    main()
