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
        # The exception type outranks the words of its message.
        ("failed", {"error_type": "AssertionError", "message": "health: Connection refused"}, "assertion"),
        ("failed", {"message": "AssertionError: health check failed: Connection refused"}, "assertion"),
        ("failed", {"message": "RuntimeError: boom"}, "error"),
        ("failed", {"error_type": "RuntimeError", "message": "boom"}, "error"),
        ("error", {"message": 'failed on setup with "RuntimeError: fixture exploded"'}, "error"),
        ("failed", {"message": "ConnectionRefusedError: [Errno 111] Connection refused"}, "infrastructure"),
        ("failed", {"message": "assert (1 + 1) == 3"}, "assertion"),
        ("failed", {"error_type": "Error", "message": "expect(received).toBe(expected)"}, "assertion"),
        ("failed", {"error_type": "java.lang.NullPointerException"}, "error"),
        ("failed", {"message": "Failed: not implemented"}, "assertion"),
    ],
)
def test_category_follows_the_evidence(status: str, kw: dict[str, object], expected: str | None) -> None:
    assert categorise(status, **kw) == expected  # type: ignore[arg-type]


def test_an_assertion_mentioning_a_refused_connection_fails_the_run_and_never_errors_it() -> None:
    from testledger.lifecycle import Totals, derive_result

    totals = Totals()
    category = categorise("failed", message="AssertionError: health check failed: Connection refused")
    totals.count("failed", flaky=False, category=category)
    assert derive_result(totals) == "failed"
    # Even a failure of category infrastructure is the test's own verdict: the run failed, no error.
    totals.count("failed", flaky=False, category="infrastructure")
    assert derive_result(totals) == "failed"
    totals.count("error", flaky=False, category="infrastructure")
    assert derive_result(totals) == "error"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("E   AssertionError: expected 3\n", "assertion"),
        ("FAILED test_x.py::test_a - assert 1 == 2", "assertion"),
        ("curl: (7) Failed to connect: Connection refused", "error"),
        ("", "error"),
    ],
)
def test_an_exit_code_is_an_assertion_or_an_error_by_the_output(tail: str, expected: str) -> None:
    from testledger.failures import exit_category

    assert exit_category(tail) == expected
