"""One try of a case: the one serialiser every writer stores in `case_results.attempts`, and its schema.

Ingest, the executor and the pytest plugin each describe a try with their own objects; all of them
go through `attempt_dict`, and every reader shows stored tries through `attempt_out`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from testledger.lifecycle import ERROR
from testledger.schemas import AttemptOut

#: What a stored try may hold besides its status, in the order it is written.
FIELDS = ("duration_ms", "message", "error_type", "stack_trace", "stdout", "stderr", "started_at")


def attempt_dict(attempt: object) -> dict[str, Any]:
    """One try as stored: its status and whichever of `FIELDS` the object has and are set."""
    data: dict[str, Any] = {"status": attempt.status}  # type: ignore[attr-defined]
    for name in FIELDS:
        value = getattr(attempt, name, None)
        if value is None:
            continue
        if name == "duration_ms":
            value = round(float(value), 3)
        elif isinstance(value, datetime):
            value = value.isoformat()
        data[name] = value
    return data


def attempt_out(stored: dict[str, Any]) -> AttemptOut:
    """A stored try as every adapter shows it (statuses upper case, as in the execution seed)."""
    return AttemptOut(
        status=str(stored.get("status", ERROR)).upper(), duration_ms=stored.get("duration_ms"),
        message=stored.get("message"), error_type=stored.get("error_type"),
    )
