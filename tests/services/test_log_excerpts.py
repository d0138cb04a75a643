"""Bounded log views: every mode answers a screenful, says where it stands, and never reads a log whole."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from testledger.errors import Invalid
from testledger.services.log_excerpts import MAX_LINE_BYTES, excerpt


def _log(lines: list[str]) -> tuple[io.BytesIO, int]:
    data = "".join(f"{line}\n" for line in lines).encode()
    return io.BytesIO(data), len(data)


def test_tail_starts_at_a_whole_line_and_points_at_what_is_before() -> None:
    log, total = _log([f"line {i}" for i in range(1000)])
    view = excerpt(log, total=total, mode="tail", max_bytes=40)
    assert view.content.splitlines()[0].startswith("line 9")
    assert view.content.endswith("line 999\n") and view.end == total
    assert "mode=page, offset=0" in view.note


def test_error_window_shows_what_led_to_the_first_error() -> None:
    log, total = _log([*(f"step {i}" for i in range(500)), "Traceback (most recent call last):",
                       "ValueError: bad input", *(f"after {i}" for i in range(500))])
    view = excerpt(log, total=total, mode="error", max_bytes=400)
    assert view.matches is not None and view.matches[0].line == 501
    assert "step 499" in view.content and "Traceback" in view.content
    assert len(view.content.encode()) <= 400


def test_no_error_falls_back_to_the_tail_and_says_so() -> None:
    log, total = _log(["all good", "still good"])
    view = excerpt(log, total=total, mode="error")
    assert view.matches == [] and "no error-like line" in view.note and "still good" in view.content


def test_search_is_case_insensitive_and_bounded() -> None:
    log, total = _log([f"request {i} {'TIMEOUT' if i % 10 == 0 else 'ok'}" for i in range(10_000)])
    view = excerpt(log, total=total, mode="search", query="timeout")
    assert view.matches is not None and len(view.matches) == 50 and "more exist" in view.note
    assert view.matches[1].line == 11


def test_page_reads_on_from_an_offset_and_refuses_one_past_the_end() -> None:
    log, total = _log(["a" * 10, "b" * 10, "c" * 10])
    view = excerpt(log, total=total, mode="page", offset=11, max_bytes=11)
    assert view.content == "b" * 10 + "\n" and view.end == 22
    with pytest.raises(Invalid, match="offset must be between 0"):
        excerpt(log, total=total, mode="page", offset=total + 1)


def test_a_huge_single_line_log_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "one-line.log"
    with open(path, "wb") as out:
        for _ in range(20):
            out.write(b"x" * (1024 * 1024))
        out.write(b" AssertionError: found it\n")
    with open(path, "rb") as log:
        total = path.stat().st_size
        view = excerpt(log, total=total, mode="error", max_bytes=1024)
        assert len(view.content.encode()) <= 1024 and view.matches
        assert len(view.matches[0].text) <= MAX_LINE_BYTES
        search = excerpt(log, total=total, mode="search", query="found it")
        assert search.matches and "found it" in search.content
