"""Bounded views of a case's log: the tail, a window around the first error, a search, or a page.

Logs can be gigabytes; an agent or a web page wants a screenful. Every view reads the log as a
stream of lines (never whole into memory), returns at most `max_bytes` of text, and says where in
the log it stands (`start`/`end` byte offsets and the total size) so the caller can page on.
"""

from __future__ import annotations

import io
import os
import re
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, Field

from testledger.errors import Invalid
from testledger.execute.logstore import LogStore
from testledger.services.logs import CaseLog

#: Largest excerpt returned at once, and the default.
MAX_EXCERPT_BYTES = 256 * 1024
DEFAULT_EXCERPT_BYTES = 16 * 1024
#: A line longer than this is cut into pieces of this size (a one-line 1 GB log stays bounded).
MAX_LINE_BYTES = 16 * 1024
#: How far a search or the first-error scan reads before it gives up (time is bounded too).
MAX_SCAN_BYTES = 512 * 1024 * 1024
MAX_MATCHES = 50
#: What counts as "an error" in a log: tracebacks, assertion failures, error and failure lines.
ERROR_LINE = re.compile(
    rb"(?i)(traceback \(most recent call last\)|\b\w*(error|exception)\b|\bassert(ion)?\b|\bfail(ed|ure)?\b|"
    rb"\bfatal\b|\bpanic\b)"
)

Mode = Literal["tail", "error", "search", "page"]


class LogMatch(BaseModel):
    line: int = Field(description="1-based line number of the match.")
    offset: int = Field(description="Byte offset of the line in the log; pass as `offset` to page from it.")
    text: str


class LogExcerpt(BaseModel):
    """Part of a case's log, with where it stands in the whole."""

    mode: str
    total_bytes: int = Field(description="Size of the whole log in bytes.")
    start: int = Field(description="Byte offset of the first byte of `content`.")
    end: int = Field(description="Byte offset just after `content`; pass as `offset` (mode=page) to read on.")
    content: str
    matches: list[LogMatch] | None = Field(default=None, description="Lines that matched (search and error).")
    note: str = Field(description="What was shown and how to get more.")


def excerpt(
    log: BinaryIO, *, total: int, mode: Mode = "tail", max_bytes: int = DEFAULT_EXCERPT_BYTES,
    query: str | None = None, offset: int = 0,
) -> LogExcerpt:
    """One bounded view of `log` (a binary file of `total` bytes, positioned anywhere)."""
    if not 1 <= max_bytes <= MAX_EXCERPT_BYTES:
        raise Invalid(f"max_bytes must be between 1 and {MAX_EXCERPT_BYTES}, got {max_bytes}")
    if mode == "tail":
        return _window(log, total=total, start=max(0, total - max_bytes), max_bytes=max_bytes, mode=mode,
                       align_start=total > max_bytes)
    if mode == "page":
        if not 0 <= offset <= total:
            raise Invalid(f"offset must be between 0 and the log's size {total}, got {offset}")
        return _window(log, total=total, start=offset, max_bytes=max_bytes, mode=mode, align_start=False)
    if mode == "error":
        return _first_error(log, total=total, max_bytes=max_bytes)
    if mode == "search":
        if not query:
            raise Invalid("mode 'search' needs a query (the text to look for, case-insensitive)")
        return _search(log, total=total, query=query, max_bytes=max_bytes)
    raise Invalid(f"unknown mode '{mode}' (expected tail, error, search or page)")


def _lines(log: BinaryIO, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(offset, line) from `start`, each line at most MAX_LINE_BYTES, reading no further than the scan limit."""
    log.seek(start)
    offset = start
    while offset - start < MAX_SCAN_BYTES:
        line = log.readline(MAX_LINE_BYTES)
        if not line:
            return
        yield offset, line
        offset += len(line)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _window(
    log: BinaryIO, *, total: int, start: int, max_bytes: int, mode: str, align_start: bool,
    matches: list[LogMatch] | None = None, note: str | None = None,
) -> LogExcerpt:
    log.seek(start)
    data = log.read(max_bytes)
    if align_start and start > 0:
        # Begin at a whole line when the cut fell inside one (and there is a line break to align to).
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            start, data = start + cut + 1, data[cut + 1:]
    end = start + len(data)
    if note is None:
        before = f"{start} bytes before (mode=page, offset=0)" if start else "nothing before"
        after = f"{total - end} bytes after (mode=page, offset={end})" if end < total else "nothing after"
        note = f"bytes {start}-{end} of {total}; {before}; {after}"
    return LogExcerpt(mode=mode, total_bytes=total, start=start, end=end, content=_text(data), matches=matches,
                      note=note)


def _first_error(log: BinaryIO, *, total: int, max_bytes: int) -> LogExcerpt:
    context: deque[int] = deque(maxlen=20)  # offsets of the lines before, to show what led to the error
    for number, (offset, line) in enumerate(_lines(log), start=1):
        if ERROR_LINE.search(line):
            start = context[0] if context else offset
            start = max(start, offset - max_bytes // 3)
            found = [LogMatch(line=number, offset=offset, text=_text(line.rstrip(b"\r\n")))]
            window = _window(log, total=total, start=start, max_bytes=max_bytes, mode="error",
                             align_start=start != (context[0] if context else offset), matches=found)
            window.note = (f"first error-like line is line {number} (byte {offset}); showing bytes "
                           f"{window.start}-{window.end} of {total}; mode=page with offset={window.end} reads on")
            return window
        context.append(offset)
    tail = excerpt(log, total=total, mode="tail", max_bytes=max_bytes)
    scanned = "the whole log" if total <= MAX_SCAN_BYTES else f"the first {MAX_SCAN_BYTES} bytes"
    tail.mode, tail.matches = "error", []
    tail.note = f"no error-like line in {scanned}; showing the tail instead ({tail.note})"
    return tail


def _search(log: BinaryIO, *, total: int, query: str, max_bytes: int) -> LogExcerpt:
    needle = query.encode("utf-8").lower()
    found: list[LogMatch] = []
    size = 0
    more = False
    for number, (offset, line) in enumerate(_lines(log), start=1):
        if needle in line.lower():
            text = _text(line.rstrip(b"\r\n"))
            if len(found) >= MAX_MATCHES or size + len(text) > max_bytes:
                more = True
                break
            found.append(LogMatch(line=number, offset=offset, text=text))
            size += len(text) + 1
    shown = f"{len(found)} matching line(s)" + (" (more exist: narrow the query)" if more else "")
    limit = "" if total <= MAX_SCAN_BYTES else f"; only the first {MAX_SCAN_BYTES} bytes were searched"
    return LogExcerpt(
        mode="search", total_bytes=total, start=found[0].offset if found else 0,
        end=found[-1].offset if found else 0, content="\n".join(m.text for m in found), matches=found,
        note=f"{shown} for '{query}'{limit}; read around one with mode=page and its offset",
    )


def read_excerpt(log: CaseLog, *, log_store: LogStore, **view: Any) -> LogExcerpt:
    """`excerpt` over a case's log as `services.logs.find_case_log` found it: the executor's log file,
    or the output stored with an ingested or plugin result."""
    if log.stored is not None:
        return excerpt(io.BytesIO(log.stored), total=len(log.stored), **view)
    assert log.ref is not None
    try:
        reader = log_store.open_reader(log.ref)
    except FileNotFoundError:  # a running case that has not printed yet
        return LogExcerpt(mode=str(view.get("mode", "tail")), total_bytes=0, start=0, end=0, content="",
                          note=f"case {log.index} of {log.run_key} has not written any output yet")
    with reader:
        reader.seek(0, os.SEEK_END)
        return excerpt(reader, total=reader.tell(), **view)
