"""A parsed case becomes the result that is stored: every field lands in its own column."""

from __future__ import annotations

import dataclasses

from testledger.caseid import case_id, reported_identity
from testledger.db.rows import NewCase, NewResult
from testledger.ingest.convert import to_result
from testledger.ingest.model import Attempt, ParsedCase


def test_every_field_of_a_parsed_case_reaches_its_result() -> None:
    """`to_result` builds its records positionally (for speed): a field moved in NewResult or NewCase must
    not shift a value into its neighbour's column."""
    case = ParsedCase(
        name="test_login[chrome]", status="failed", suite="web", classname="tests.web.LoginTest", duration_ms=12.5,
        message="expected 200, got 503", error_type="AssertionError", stack_trace="Traceback ...\nAssertionError",
        stdout="GET /login", stderr="warning: slow", properties={"browser": "chrome"},
        attempts=[Attempt(status="failed", duration_ms=5.0, message="timeout"), Attempt(status="failed")],
        flaky=True, attachments=["shots/login.png"],
    )
    result = to_result(case, 7, 3)
    identity = reported_identity("web", "tests.web.LoginTest", "test_login[chrome]")
    expected = NewResult(
        idx=7,
        case=NewCase(id=case_id(3, identity), identity=identity, kind="reported", name="test_login[chrome]",
                     key=None, suite="web", classname="tests.web.LoginTest"),
        status="failed", parent_idx=None, duration_ms=12.5, message="expected 200, got 503",
        error_type="AssertionError", failure_category=result.failure_category,
        stack_trace="Traceback ...\nAssertionError", stdout="GET /login", stderr="warning: slow",
        properties={"browser": "chrome"},
        attempts=[{"status": "failed", "duration_ms": 5.0, "message": "timeout"}, {"status": "failed"}],
        attempt_count=None, flaky=True, worker=None, started_at=None, completed_at=None, log_ref=None,
        attachments=["shots/login.png"],
    )
    assert dataclasses.asdict(result) == dataclasses.asdict(expected)
    assert result.failure_category is not None  # a failure is categorised


def test_a_plain_pass_carries_no_text_and_no_category() -> None:
    result = to_result(ParsedCase(name="t", status="passed", duration_ms=1.0), 0, 1)
    assert (result.status, result.duration_ms, result.failure_category, result.attempts, result.attachments) == (
        "passed", 1.0, None, None, None)
