"""Streaming untrusted JSON reports: values at chosen paths, one at a time, and typed access to them.

A JSON report is never loaded whole: ``JsonWalk`` reads it with ijson's C lexer (yajl) and builds
only the values a parser asks for (each CTRF test, each Cucumber feature), so memory stays flat
with report size as it does for XML. Nesting deeper than ``MAX_DEPTH`` is refused before ijson
or Python could spend memory or stack on it, and a lone UTF-16 surrogate escape (``"\\ud800"``,
which yajl would silently turn into ``?``) is refused with the other unreadable text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

import ijson

from testledger.ingest.model import ReportParseError
from testledger.ingest.parsers.stream import peek
from testledger.ingest.parsers.values import clean

#: An array's items in a path: ``("results", "tests", ITEM)`` is every CTRF test.
ITEM = "[]"
#: Deepest nesting accepted; real reports stay under 20 levels.
MAX_DEPTH = 256
_HEAD = 64 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
_START = {"start_map": dict, "start_array": list}
_END = frozenset({"end_map", "end_array"})

Path = tuple[str, ...]


class JsonWalk:
    """Iterate ``(path, value)`` for every value of ``stream`` at one of the ``wanted`` paths, in
    document order; each value is built whole, nothing else is kept. ``kinds`` records whether
    the document root and the parent of each wanted path were an ``"array"``, a ``"map"`` or a
    ``"scalar"``, for the parser's shape checks once the walk is over."""

    def __init__(self, stream: IO[bytes], *, name: str, what: str, wanted: set[Path]) -> None:
        self.stream, self.name, self.what, self.wanted = stream, name, what, wanted
        self._watched = {(), *(path[:-1] for path in wanted)}
        self.kinds: dict[Path, str] = {}

    def __iter__(self) -> Iterator[tuple[Path, Any]]:
        head, source = peek(self.stream, _HEAD)
        if not head.strip() or head.strip() == _UTF8_BOM:
            raise ReportParseError(f"empty document (expected {self.what})", file=self.name)
        if head.startswith(_UTF8_BOM):
            source.read(len(_UTF8_BOM))
        guarded = SurrogateCheck(source, name=self.name)
        try:
            yield from self._walk(ijson.basic_parse(guarded, use_float=True))
        except ijson.JSONError as exc:
            raise _syntax_error(exc, head, name=self.name) from None

    def _walk(self, events: Iterator[tuple[str, Any]]) -> Iterator[tuple[Path, Any]]:
        path: list[str] = []
        for event, value in events:
            if event == "map_key":
                path[-1] = value
                continue
            if event in _END:
                path.pop()
                continue
            here = tuple(path)
            if here in self._watched:
                self.kinds.setdefault(here, "map" if event == "start_map" else "array" if event == "start_array"
                                      else "scalar")
            if here in self.wanted:
                yield here, self._build(event, value, events, depth=len(path))
            elif event in _START:
                if len(path) >= MAX_DEPTH:
                    raise self._too_deep()
                path.append(ITEM if event == "start_array" else "")

    def _build(self, event: str, value: Any, events: Iterator[tuple[str, Any]], *, depth: int) -> Any:
        """The whole value that starts with ``event``, from the events that follow it."""
        kind = _START.get(event)
        if kind is None:
            return value
        root: Any = kind()
        stack: list[Any] = [root]
        key: str = ""
        for event, value in events:
            if event == "map_key":
                key = value
                continue
            if event in _END:
                stack.pop()
                if not stack:
                    return root
                continue
            kind = _START.get(event)
            item = value if kind is None else kind()
            top = stack[-1]
            if type(top) is dict:
                top[key] = item
            else:
                top.append(item)
            if kind is not None:
                stack.append(item)
                if depth + len(stack) > MAX_DEPTH:
                    raise self._too_deep()
        return root  # unreachable for a complete document: ijson raises on a truncated one first

    def _too_deep(self) -> ReportParseError:
        return ReportParseError(f"{self.what} is nested more than {MAX_DEPTH} levels deep", file=self.name)


def _syntax_error(exc: Exception, head: bytes, *, name: str) -> ReportParseError:
    """ijson's complaint as one line; for a document that fits the head, json's (with its line)."""
    if len(head) < _HEAD:
        try:
            json.loads(head.decode("utf-8-sig", errors="replace"))
        except json.JSONDecodeError as precise:
            return ReportParseError(
                f"not valid JSON ({precise.msg}, column {precise.colno})", file=name, line=precise.lineno
            )
        except RecursionError:
            pass
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ReportParseError(f"not valid JSON ({reason})", file=name)


class SurrogateCheck:
    """Passes bytes through and refuses a JSON text holding a lone UTF-16 surrogate escape.

    A high escape (``\\ud800``-``\\udbff``) must be followed at once by a low one
    (``\\udc00``-``\\udfff``) and a low one must follow a high one. The pattern only matches an
    escape preceded by an even run of backslashes (``\\\\ud800`` is text, not an escape);
    ``_CARRY`` bytes are held back between reads so no escape is split.
    """

    _ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")
    _CARRY = 16

    def __init__(self, inner: IO[bytes], *, name: str) -> None:
        self._inner, self._name = inner, name
        self._tail = b""
        self._high_end = -1  # where the last high escape ended, in the scanned text
        self._offset = 0  # stream offset of self._tail[0]

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes the stream's type with read(0)
            return b""
        data = self._inner.read(size)
        text = self._tail + data
        if not data:
            self._scan(text, len(text))
            self._tail = b""
            return data
        keep = max(0, len(text) - self._CARRY)
        while keep > 0 and text[keep - 1 : keep] == b"\\":
            keep -= 1  # never split a run of backslashes: its parity decides what follows
        self._scan(text, keep)
        self._offset += keep
        self._tail = text[keep:]
        return data

    def _scan(self, text: bytes, upto: int) -> None:
        if b"\\u" not in text:
            if self._high_end >= 0:
                raise self._lone()
            return
        for match in self._ESCAPE.finditer(text, 0, len(text)):
            start = match.end() - 6
            if start >= upto:
                break
            at = self._offset + start
            if match.group(1) in b"89abAB":
                if self._high_end >= 0:
                    raise self._lone()
                self._high_end = self._offset + match.end()
            elif self._high_end != at:
                raise self._lone()
            else:
                self._high_end = -1
        if self._high_end >= 0 and self._high_end < self._offset + upto:
            raise self._lone()

    def _lone(self) -> ReportParseError:
        return ReportParseError(
            "JSON text holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is no character: "
            "fix the tool that wrote the report",
            file=self._name,
        )


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    """A string field NUL-free; numbers are rendered, anything else is ``None``."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def as_text(value: object) -> str | None:
    """Like :func:`as_str`, but a list of strings (CTRF stdout, rspec backtrace) is joined by lines."""
    if isinstance(value, list):
        lines = [line for line in (as_str(item) for item in value) if line is not None]
        return "\n".join(lines) if lines else None
    return as_str(value) or None


def expect_shape(ok: bool, *, name: str, what: str) -> None:
    """Refuse a JSON document whose top-level shape is not the one ``what`` has."""
    if not ok:
        raise ReportParseError(f"JSON is not {what}", file=name)
