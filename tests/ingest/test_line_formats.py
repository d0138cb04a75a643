"""TAP and go test -json, both read line by line."""

from __future__ import annotations

import io
import json

import pytest
from reading import parse_as, parse_bytes, parse_fixture, statuses

from testledger.ingest.detect import HEAD_SIZE
from testledger.ingest.model import ReportParseError
from testledger.ingest.parsers import parse_report


def test_tap_top_level_points_subtests_directives_and_yaml() -> None:
    _, cases = parse_fixture("tap14.tap")
    assert [(c.name, c.status) for c in cases] == [
        ("cart", "failed"),
        ("checkout", "skipped"),
        ("refunds", "skipped"),
        ("totals # are right", "passed"),
    ]
    cart = cases[0]
    assert (cart.message, cart.stack_trace, cart.duration_ms) == ("removes failed", "at cart.js:9", 12.5)
    assert cases[1].message == "no payment sandbox"
    assert cases[2].properties == {"original_status": "todo"}
    assert cases[3].duration_ms == pytest.approx(3.5)


def test_tap_buffered_subtests_count_once() -> None:
    doc = b"TAP version 13\nok 1 - nesting {\n    ok 1 - a\n    not ok 2 - b\n    1..2\n}\nok 2 - after\n1..2\n"
    _, cases = parse_bytes(doc)
    assert [(c.name, c.status) for c in cases] == [("nesting", "passed"), ("after", "passed")]


def test_tap_bail_out_is_a_note_and_ends_the_stream() -> None:
    info, cases = parse_bytes(b"1..3\nok 1\nBail out! database is down\nok 2\n")
    assert statuses(cases) == ["passed"]
    assert info.notes == ["Bail out! database is down"]


def test_tap_directive_needs_a_word_boundary_and_honours_escapes() -> None:
    doc = b"ok 1 - #todo empty description\nok 2 - url#todo is not a directive\nok 3 - Not a \\# SKIP\n"
    _, cases = parse_bytes(doc)
    assert [(c.name, c.status) for c in cases] == [
        ("test 1", "skipped"),
        ("url#todo is not a directive", "passed"),
        ("Not a # SKIP", "passed"),
    ]


def test_tap_points_after_a_closing_plan_are_ignored() -> None:
    info, cases = parse_bytes(b"ok 1\nok 2\n1..2\nok 3\n")
    assert len(cases) == 2
    assert info.notes == ["1 test point(s) after the closing plan ignored"]


def test_tap_unterminated_yaml_is_kept_raw() -> None:
    _, cases = parse_bytes(b"not ok 1 broken\n  ---\n  message: 'x\n  : : :\nok 2\n")
    assert statuses(cases) == ["failed", "passed"]
    assert cases[0].stack_trace is not None and ": : :" in cases[0].stack_trace


def test_empty_tap_stream_is_zero_tests_for_the_parser() -> None:
    info, cases = parse_as("tap", b"")
    assert cases == []
    assert info.notes == []


def _go(**event: object) -> str:
    return json.dumps({"Time": "2024-01-01T00:00:00Z", "Package": "example.com/p", **event})


def test_gotest_fixture_subtests_count_separately_and_output_accumulates() -> None:
    info, cases = parse_fixture("gotest.json")
    assert [(c.name, c.status) for c in cases] == [
        ("TestAdd", "passed"),
        ("TestCart/remove", "failed"),
        ("TestCart", "failed"),
        ("TestSkip", "skipped"),
    ]
    remove = cases[1]
    assert (remove.suite, remove.classname) == ("example.com/shop", "example.com/shop")
    assert remove.message == "cart_test.go:12: expected 0, got 1"
    assert remove.duration_ms == pytest.approx(20.0)
    assert cases[0].stdout == "=== RUN   TestAdd\n--- PASS: TestAdd (0.01s)\n"
    assert cases[3].message == "shop_test.go:40: needs docker"
    assert info.notes == ["package example.com/shop: FAIL"]


def test_gotest_reruns_stay_separate_cases() -> None:
    lines = [
        _go(Action="run", Test="TestFlaky"),
        _go(Action="fail", Test="TestFlaky", Elapsed=0.1),
        _go(Action="fail", Elapsed=0.2),
        _go(Action="run", Test="TestFlaky"),
        _go(Action="pass", Test="TestFlaky", Elapsed=0.1),
        _go(Action="pass", Elapsed=0.2),
    ]
    _, cases = parse_bytes("\n".join(lines).encode())
    assert [(c.name, c.status) for c in cases] == [("TestFlaky", "failed"), ("TestFlaky", "passed")]


def test_gotest_unfinished_tests_fail_with_their_package_or_are_dropped_with_a_note() -> None:
    lines = [
        _go(Action="run", Test="TestHangs"),
        _go(Action="output", Test="TestHangs", Output="panic: boom\n"),
        _go(Action="fail", Elapsed=1),
        _go(Action="run", Package="example.com/q", Test="TestOrphan"),
        "not json at all",
        _go(Action="pass", Package="example.com/q", Elapsed=1),
    ]
    info, cases = parse_bytes("\n".join(lines).encode())
    assert [(c.name, c.status, c.message) for c in cases] == [("TestHangs", "failed", "panic: boom")]
    assert info.notes == [
        "package example.com/p: FAIL",
        "example.com/q TestOrphan: started but reported no outcome; not counted",
        "1 non-JSON line(s) ignored",
    ]


def test_gotest_build_failure_is_a_note() -> None:
    lines = [
        json.dumps({"ImportPath": "example.com/p", "Action": "build-output", "Output": "x.go:1: syntax error\n"}),
        json.dumps({"ImportPath": "example.com/p", "Action": "build-fail"}),
        _go(Action="start"),
        _go(Action="fail", Elapsed=0, FailedBuild="example.com/p"),
    ]
    info, cases = parse_bytes("\n".join(lines).encode())
    assert cases == []
    assert info.notes == ["package example.com/p: build failed", "package example.com/p: FAIL"]


def test_gotest_parser_refuses_input_without_events() -> None:
    with pytest.raises(ReportParseError, match="no go test JSON events"):
        parse_as("gotest", b"PASS\nok  example.com/p 0.1s\n")


def test_gotest_output_after_an_outcome_is_no_phantom_test() -> None:
    lines = [
        _go(Action="run", Test="TestA"),
        _go(Action="pass", Test="TestA", Elapsed=0),
        _go(Action="output", Test="TestA", Output="late line\n"),
        _go(Action="fail", Elapsed=1),
    ]
    _, cases = parse_bytes("\n".join(lines).encode())
    assert [(c.name, c.status) for c in cases] == [("TestA", "passed")]


def test_tap_version_sets_the_dialect_and_a_subtest_bail_out_stops_the_run() -> None:
    info, cases = parse_bytes(b"TAP version 14\nok 1 - a\n    Bail out! child gave up\nok 2 - b\n")
    assert info.dialect == "tap14"
    assert statuses(cases) == ["passed"]
    assert info.notes == ["Bail out! child gave up"]


class _Trickle(io.RawIOBase):
    """A non-seekable stream (a socket, a gzip file) that hands out at most 1,000 bytes a read."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        taken = min(len(buffer), 1000, self._data.nbytes)
        buffer[:taken] = self._data[:taken]
        self._data = self._data[taken:]
        return taken


@pytest.mark.parametrize("points", [10, 3_000])  # within the 64 KiB that detection reads, and far past it
def test_a_line_report_is_read_to_its_last_line_whatever_its_size(points: int) -> None:
    doc = "".join(f"ok {n} - test number {n} of a long suite\n" for n in range(1, points + 1))
    doc += f"not ok {points + 1} - the last one\n1..{points + 1}\n"
    assert (points < 100) == (len(doc) < HEAD_SIZE)
    for stream in (io.BytesIO(doc.encode()), io.BufferedReader(_Trickle(doc.encode()))):
        _, cases = parse_report(stream, name="suite.tap")
        assert len(cases) == points + 1
        assert (cases[-1].name, cases[-1].status) == ("the last one", "failed")
        assert [c.name for c in cases[:2]] == ["test number 1 of a long suite", "test number 2 of a long suite"]
