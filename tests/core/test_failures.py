"""Failure categories come from evidence, never left blank for a failed case."""

from __future__ import annotations

import pytest

from testledger.failures import categorise


@pytest.mark.parametrize(
    ("status", "kw", "expected"),
    [
        ("passed", {}, None),
        ("skipped", {"message": "not on linux"}, None),
        ("failed", {"message": "Expected status 200, got 500"}, "assertion"),
        ("error", {"error_type": "AssertionError", "message": "x"}, "assertion"),
        ("error", {"error_type": "KeyError", "message": "'id'"}, "error"),
        ("failed", {"message": "Read timed out after 30s"}, "timeout"),
        ("error", {"error_type": "TimeoutError"}, "timeout"),
        ("error", {"message": "psycopg.OperationalError: Connection refused"}, "infrastructure"),
        ("failed", {"stack_trace": "at connect()\nECONNREFUSED 127.0.0.1:5432"}, "infrastructure"),
        ("error", {"message": "getaddrinfo failed: Name or service not known"}, "infrastructure"),
        ("error", {"message": "OSError: [Errno 28] No space left on device"}, "infrastructure"),
        ("error", {"error_type": "MemoryError"}, "infrastructure"),
        ("error", {"message": "exit code 3 (expected 0)"}, "error"),
        ("failed", {"message": "whatever", "timed_out": True}, "timeout"),
        ("error", {"message": "command not found", "infrastructure": True}, "infrastructure"),
    ],
)
def test_category_follows_the_evidence(status: str, kw: dict[str, object], expected: str | None) -> None:
    assert categorise(status, **kw) == expected  # type: ignore[arg-type]
