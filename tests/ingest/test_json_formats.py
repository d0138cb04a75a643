"""CTRF, Cucumber, mocha, jest, RSpec and Dart JSON: statuses, attempts, identity and bad JSON."""

from __future__ import annotations

import json

import pytest
from reading import by_name, parse_as, parse_bytes, parse_fixture, statuses

from testledger.ingest.model import ReportParseError

JSON_FORMATS = ["ctrf", "cucumber", "mocha", "jest", "rspec"]


def test_ctrf_statuses_retry_attempts_attachments_and_output() -> None:
    info, cases = parse_fixture("ctrf.json")
    assert info.dialect == "playwright"
    assert statuses(cases) == ["passed", "passed", "failed", "skipped", "error"]
    named = by_name(cases)
    assert named["logs in"].suite == "auth > login"
    assert (named["logs in"].file, named["logs in"].line) == ("tests/login.spec.ts", 12)
    retried = named["retries then passes"]
    assert retried.flaky is True
    assert [(a.status, a.duration_ms, a.message) for a in retried.attempts] == [
        ("failed", 250.0, "timeout"),
        ("passed", 300.0, None),
    ]
    assert retried.attachments == ["artifacts/shot.png"]
    checkout = named["checkout"]
    assert (checkout.message, checkout.stdout, checkout.stderr) == ("expected 3", "line one\nline two", "warn")
    assert named["later"].properties == {"original_status": "pending"}
    assert named["weird"].properties == {"original_status": "other"}


def test_ctrf_retry_attempts_that_already_include_the_final_try_are_not_doubled() -> None:
    doc = {
        "results": {
            "tool": {"name": "x"},
            "tests": [
                {
                    "name": "t",
                    "status": "passed",
                    "duration": 3,
                    "retries": 2,
                    "retryAttempts": [{"status": "failed"}, {"status": "failed"}, {"status": "passed"}],
                }
            ],
        }
    }
    _, cases = parse_bytes(json.dumps(doc).encode())
    assert [a.status for a in cases[0].attempts] == ["failed", "failed", "passed"]
    assert cases[0].flaky is True


def test_cucumber_background_steps_hooks_and_unfinished_steps() -> None:
    _, cases = parse_fixture("cucumber.json")
    assert [(c.name, c.status) for c in cases] == [
        ("adds an item", "passed"),
        ("removes an item", "failed"),
        ("pays", "skipped"),
        ("hook fails", "failed"),
    ]
    assert all(c.suite == "Cart" for c in cases)
    assert cases[0].duration_ms == pytest.approx(3.0)  # background 1 ms + step 2 ms, from nanoseconds
    assert cases[0].properties == {"tags": "@smoke"}
    assert cases[1].message == "shop is closed"
    assert cases[3].message == "db down"


def test_cucumber_step_without_result_is_skipped() -> None:
    doc = [{"name": "F", "elements": [{"type": "scenario", "name": "s", "steps": [{"name": "no result"}]}]}]
    _, cases = parse_bytes(json.dumps(doc).encode())
    assert statuses(cases) == ["skipped"]


def test_mocha_err_and_pending() -> None:
    _, cases = parse_fixture("mocha.json")
    assert [(c.classname, c.name, c.status) for c in cases] == [
        ("Cart", "adds", "passed"),
        ("Cart", "removes", "failed"),
        ("Cart", "later", "skipped"),
    ]
    assert cases[1].message == "expected 1 to equal 0"
    assert cases[1].error_type == "AssertionError"


def test_jest_assertion_results_and_a_file_that_did_not_run() -> None:
    info, cases = parse_fixture("jest.json")
    assert statuses(cases) == ["passed", "failed", "skipped", "skipped"]
    assert cases[0].classname == "Cart \u203a add"
    assert cases[1].message == "Error: expect(received).toBe(expected)"
    assert cases[1].line == 12
    assert info.notes == ["test file /repo/src/broken.test.js did not run: Test suite failed to run"]


def test_jest_raw_aggregated_result_shape() -> None:
    doc = {
        "numTotalTests": 2,
        "testResults": [
            {
                "testFilePath": "/r/a.test.ts",
                "testResults": [
                    {"ancestorTitles": ["A"], "title": "x", "status": "passed", "failureMessages": []},
                    {"ancestorTitles": ["A"], "title": "y", "status": "disabled", "failureMessages": []},
                ],
            }
        ],
    }
    info, cases = parse_bytes(json.dumps(doc).encode())
    assert info.dialect == "jest-AggregatedResult"
    assert [(c.suite, c.name, c.status) for c in cases] == [
        ("/r/a.test.ts", "x", "passed"),
        ("/r/a.test.ts", "y", "skipped"),
    ]


def test_rspec_examples() -> None:
    _, cases = parse_fixture("rspec.json")
    assert statuses(cases) == ["passed", "failed", "skipped"]
    failed = cases[1]
    assert (failed.classname, failed.name, failed.error_type) == (
        "Cart",
        "removes",
        "RSpec::Expectations::ExpectationNotMetError",
    )
    assert failed.stack_trace == "./spec/cart_spec.rb:9\nrspec-core/lib/x.rb:1"
    assert failed.duration_ms == pytest.approx(20.0)
    assert cases[2].message == "Not yet implemented"


def test_dart_events() -> None:
    _, cases = parse_fixture("dart.json")
    assert [(c.name, c.status) for c in cases] == [
        ("Cart adds", "passed"),
        ("Cart removes", "failed"),
        ("Cart later", "skipped"),
        ("Cart throws", "error"),
    ]
    assert cases[0].stdout == "adding"
    assert cases[0].duration_ms == pytest.approx(9.0)
    assert cases[1].message == "Expected: <0>"


def test_nul_characters_are_stripped_from_json_strings() -> None:
    doc = {"results": {"tests": [{"name": "a\u0000b", "status": "failed", "message": "x\u0000y"}]}}
    _, cases = parse_bytes(json.dumps(doc).encode())
    assert (cases[0].name, cases[0].message) == ("ab", "xy")


def test_malformed_json_names_file_and_line() -> None:
    with pytest.raises(ReportParseError) as caught:
        parse_as("mocha", b'{\n  "tests": [\n    {"title": }\n  ]\n}', name="m.json")
    assert str(caught.value).startswith("m.json:3: not valid JSON (")


def test_truncated_json_is_rejected() -> None:
    with pytest.raises(ReportParseError, match="not valid JSON"):
        parse_bytes(b'{"results": {"tool": {"name": "x"}, "tests": [{"name": "a", "status": "pa', name="c.json")


@pytest.mark.parametrize("format_id", JSON_FORMATS)
@pytest.mark.parametrize("data", [b"", b"[1, 2]", b'{"tests": "nope"}', b'"text"', b"{bad"])
def test_json_parsers_reject_wrong_shapes_with_report_parse_error(format_id: str, data: bytes) -> None:
    if format_id == "cucumber" and data == b"[1, 2]":
        _, cases = parse_as(format_id, data)  # a list of non-features holds no scenarios
        assert cases == []
        return
    with pytest.raises(ReportParseError):
        parse_as(format_id, data, name="x.json")


def test_empty_json_document_is_rejected() -> None:
    with pytest.raises(ReportParseError, match="empty"):
        parse_bytes(b"", name="empty.json")
