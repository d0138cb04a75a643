"""The reaper kills only the process groups the executor started, never a group that reused an id."""

from __future__ import annotations

import os
import subprocess
import threading
import time

from testledger.execute.reaper import follow, reap, start_time


def test_the_reaper_kills_a_listed_group_and_spares_a_process_that_is_not_it() -> None:
    ours = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30"], start_new_session=True)
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        # The stranger is listed with another start time: a process that reused a finished group's id.
        reap({ours.pid: start_time(ours.pid), stranger.pid: str(int(start_time(stranger.pid)) - 1)}, grace=2)
        assert ours.wait(timeout=5) != 0
        assert stranger.poll() is None
    finally:
        ours.kill()
        stranger.kill()
        ours.wait()
        stranger.wait()


def test_the_reaper_learns_every_group_at_once_when_the_executor_is_gone() -> None:
    """Lines wait in the pipe between drains; the writer's end closing wakes the reaper at once, and it
    reads every line left, a last one without its newline too."""
    leader = subprocess.Popen(["sleep", "30"], start_new_session=True)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, f"+{leader.pid}\n+999999 12345\n+999998\n-999998\n+4194399".encode())
        groups: dict[int, str] = {}
        done = threading.Thread(target=follow, args=(read_end, groups), kwargs={"drain_seconds": 60})
        done.start()
        time.sleep(0.2)
        os.close(write_end)
        done.join(timeout=10)
        assert not done.is_alive(), "the reaper waited for its next drain instead of the pipe's end"
        # A group listed without its start time gets the leader's, read by the reaper.
        assert groups == {leader.pid: start_time(leader.pid), 999999: "12345", 4194399: ""}
        assert groups[leader.pid]
    finally:
        os.close(read_end)
        leader.kill()
        leader.wait()
