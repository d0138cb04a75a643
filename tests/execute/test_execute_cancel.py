"""Cancel and refresh of runs no executor holds: opened by `runs start`, by an ingest, by pytest."""

from __future__ import annotations

import json
from typing import Any


def test_cancel_ends_a_run_started_by_hand_at_once(cli: Any) -> None:
    key = cli("runs", "start", "--pipeline", "e2e", "--env", "ci").stdout.strip()
    said = cli("cancel", key)
    assert (said.code, said.stdout.strip()) == (0, f"{key}: cancelled")
    shown = json.loads(cli("runs", "show", key, "--json").stdout)
    assert (shown["status"], shown["test_run_status"]) == ("CANCELLED", "cancelled")
    again = cli("cancel", key)
    assert again.code == 3 and "already cancelled" in again.stderr
