"""The reaper kills only the process groups the executor started, never a group that reused an id."""

from __future__ import annotations

import subprocess

from testledger.execute.reaper import reap, start_time


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
