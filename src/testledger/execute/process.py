"""Running one case process in its own process group: streamed output, time limit, kill of the whole group."""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from testledger.execute.logstore import CaseOutput

log = logging.getLogger(__name__)

READ_BYTES = 256 * 1024
#: How often a quiet process is checked for a stop request or an exit that left the pipe open.
POLL_SECONDS = 0.2


@dataclass(slots=True)
class ProcessOutcome:
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    stopped: bool = False
    spawn_error: str | None = None
    duration_ms: float = 0.0


class ProcessGroups:
    """Every process group a run started. Groups left behind by a case (a background server) live
    until the run ends; `kill_all` then ends them, so a run leaves no orphans. Each group is also
    told to a reaper process (`execute/reaper.py`), which ends them if this process dies first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._reaper: subprocess.Popen[bytes] | None = None

    def add(self, pgid: int) -> None:
        with self._lock:
            self._groups.add(pgid)
            self._tell_reaper(f"+{pgid}\n")

    def _tell_reaper(self, line: str) -> None:
        if self._reaper is None:
            try:
                # Its own session: the terminal's Ctrl-C must not take it down with the executor.
                self._reaper = subprocess.Popen(
                    [sys.executable, "-m", "testledger.execute.reaper"], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                )
            except OSError as exc:
                log.warning("cannot start the case reaper (%s): cases may outlive a killed executor", exc)
                return
        assert self._reaper.stdin is not None
        try:
            os.write(self._reaper.stdin.fileno(), line.encode())
        except OSError as exc:
            log.warning("the case reaper is gone (%s): cases may outlive a killed executor", exc)

    def kill_all(self, *, grace: float) -> None:
        with self._lock:
            groups = sorted(self._groups)
            self._groups.clear()
        try:
            self._kill(groups, grace=grace)
        finally:
            self._stop_reaper()

    def _stop_reaper(self) -> None:
        with self._lock:
            reaper, self._reaper = self._reaper, None
        if reaper is None:
            return
        assert reaper.stdin is not None
        # End-of-file: it checks the (now ended) groups and exits. Not waited for: it may still be
        # starting, and the run's end should not pay for that (subprocess reaps it later).
        reaper.stdin.close()

    @staticmethod
    def _kill(groups: list[int], *, grace: float) -> None:
        alive = [g for g in groups if group_alive(g) and _signal_group(g, signal.SIGTERM)]
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.02)
            alive = [g for g in alive if group_alive(g)]
        for group in alive:
            _signal_group(group, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies do not count: an orphan that exited waits
    for init to reap it, and some inits reap slowly."""
    if not _signal_group(pgid, 0):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no procfs (macOS): trust the signal check
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def kill_group(proc: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM the process group, then SIGKILL whatever is still there after `grace` seconds."""
    if not _signal_group(proc.pid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_alive(proc.pid):
            return
        time.sleep(0.02)
    _signal_group(proc.pid, signal.SIGKILL)


def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    deadline: float | None,
    output: CaseOutput,
    groups: ProcessGroups,
    stop: threading.Event,
    grace: float,
) -> ProcessOutcome:
    """Run `argv` (stdout and stderr both streamed to `output`) until it exits, `deadline`
    (a `time.monotonic()` value) passes, or `stop` is set; then kill its group if needed."""
    started = time.monotonic()
    read = -1
    try:
        # The pipe is made here and handed to Popen as a descriptor: Popen's own would be wrapped in
        # a buffered file object (system calls of its own) that only gets unwrapped again.
        read, write = os.pipe()
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=_devnull(), stdout=write, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        finally:
            os.close(write)
    except BaseException as exc:
        if read >= 0:
            os.close(read)
        if isinstance(exc, OSError):  # out of descriptors included: the case could not start
            return ProcessOutcome(spawn_error=f"{type(exc).__name__}: {exc}", exit_code=127)
        raise
    groups.add(proc.pid)
    outcome = ProcessOutcome()
    try:
        _pump(proc, read, output, outcome, deadline=deadline, stop=stop, grace=grace)
    finally:
        os.close(read)
    code = proc.wait()
    outcome.duration_ms = (time.monotonic() - started) * 1000
    if code < 0:
        outcome.signal = -code
    else:
        outcome.exit_code = code
    return outcome


_null: int | None = None
_null_lock = threading.Lock()


def _devnull() -> int:
    """/dev/null, opened once for every case's stdin (Popen's DEVNULL opens and closes it each time)."""
    global _null
    if _null is None:
        with _null_lock:
            if _null is None:
                _null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _null


def _pump(
    proc: subprocess.Popen[bytes], fd: int, output: CaseOutput, outcome: ProcessOutcome, *,
    deadline: float | None, stop: threading.Event, grace: float,
) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while True:
        wait = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
        if wait <= 0 or stop.is_set():
            outcome.timed_out, outcome.stopped = not stop.is_set(), stop.is_set()
            kill_group(proc, grace=grace)
            _drain(fd, output)
            return
        if poller.poll(wait * 1000):
            chunk = os.read(fd, READ_BYTES)
            if not chunk:
                return
            output.write(chunk)
        elif proc.poll() is not None:
            # The process exited but something it started in the background holds the pipe open.
            _drain(fd, output)
            return


def _drain(fd: int, output: CaseOutput) -> None:
    """Read what is already in the pipe without waiting for writers that may never close it."""
    os.set_blocking(fd, False)
    for _ in range(64):
        try:
            chunk = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return
        if not chunk:
            return
        output.write(chunk)
