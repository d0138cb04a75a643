"""TAP 12/13/14 parser, line by line: top-level test points only, each with its YAML diagnostics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

import yaml

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.values import clean, duration_ms, number_to_ms

_POINT = re.compile(r"(not )?ok\b\s*(\d+)?\s*(?:-\s*)?(.*)$")
_PLAN = re.compile(r"\d+\.\.\d+")
_DIRECTIVE = re.compile(r"(skip|todo)\S*\s*(.*)$", re.IGNORECASE | re.DOTALL)
_TIME = re.compile(r"time\s*=\s*([0-9.]+)\s*(ms|s)?", re.IGNORECASE)
#: YAML blocks past this size are kept as raw text instead of being parsed.
_MAX_YAML = 1 << 20


class TapParser:
    """Subtests (indented or buffered in ``{ }``) count once, as their parent point does."""

    format = "tap"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(_TapReader(info).cases(stream), name=name, what="TAP")


class _TapReader:
    def __init__(self, info: ReportInfo) -> None:
        self.info = info
        self.pending: ParsedCase | None = None
        self.yaml_lines: list[str] | None = None
        self.after_point = False
        self.seen_point = False
        self.closed = False
        self.ignored = 0

    def cases(self, stream: IO[bytes]) -> Iterator[ParsedCase]:
        for raw in stream:
            line = clean(raw.decode("utf-8", errors="replace").rstrip("\r\n")) or ""
            if self.yaml_lines is not None and self._collect_yaml(line):
                continue
            if self.after_point and self.pending is not None and line.strip() == "---" and line[:1].isspace():
                self.yaml_lines = []
                continue
            self.after_point = False
            match = _POINT.match(line)
            if match and self.closed:
                self.ignored += 1
            elif match:
                if self.pending is not None:
                    yield self.pending
                self.pending = _point(match)
                self.after_point = True
                self.seen_point = True
            elif line.startswith("TAP version "):
                self.info.dialect = self.info.dialect or f"tap{line[len('TAP version ') :].strip()}"
            elif self.seen_point and _PLAN.match(line):
                # A plan after the test points closes the document (as tap-parser reads it).
                self.closed = True
            elif line.lstrip().startswith("Bail out!"):
                # A subtest's bail out stops the whole run, as in tap-parser.
                reason = line.lstrip()[len("Bail out!") :].strip()
                self.info.notes.append(f"Bail out!{' ' + reason if reason else ''}")
                break
        self._end_yaml()
        if self.pending is not None:
            yield self.pending
        if self.ignored:
            self.info.notes.append(f"{self.ignored} test point(s) after the closing plan ignored")

    def _collect_yaml(self, line: str) -> bool:
        """Add ``line`` to the open YAML block; False when the block has ended without ``...``."""
        assert self.yaml_lines is not None
        if line.strip() == "...":
            self._end_yaml()
            return True
        if line[:1].isspace() or not line:
            self.yaml_lines.append(line)
            return True
        self._end_yaml()
        return False

    def _end_yaml(self) -> None:
        if self.yaml_lines is not None and self.pending is not None:
            _apply_diagnostics(self.pending, self.yaml_lines)
        self.yaml_lines = None


def _point(match: re.Match[str]) -> ParsedCase:
    failed, number, rest = match.group(1), match.group(2), match.group(3)
    description, directive = _split_directive(rest)
    if description.endswith("{"):
        description = description[:-1].rstrip()
    case = ParsedCase(name=description or f"test {number or '?'}", status="failed" if failed else "passed")
    if directive is None:
        return case
    timing = _TIME.match(directive)
    if timing:
        value = float(timing.group(1)) if timing.group(1).count(".") <= 1 else None
        if value is not None:
            case.duration_ms = duration_ms(value * (1000.0 if (timing.group(2) or "ms").lower() == "s" else 1.0))
        return case
    found = _DIRECTIVE.match(directive)
    if found:
        kind = found.group(1).lower()
        case.status = "skipped"
        case.message = found.group(2).strip() or None
        case.properties = {"original_status": "todo" if kind == "todo" else "skip"}
        if kind == "todo" and failed is None:
            case.properties["todo_passed"] = "true"
    return case


def _split_directive(text: str) -> tuple[str, str | None]:
    """Split at the first unescaped ``#`` that starts a word; ``\\#`` and ``\\\\`` are escapes."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in "#\\":
            out.append(text[index + 1])
            index += 2
            continue
        if char == "#" and (index == 0 or text[index - 1].isspace()):
            return "".join(out).strip(), text[index + 1 :].strip()
        out.append(char)
        index += 1
    return "".join(out).strip(), None


def _apply_diagnostics(case: ParsedCase, lines: list[str]) -> None:
    raw = "\n".join(lines)
    data = _load_yaml(raw)
    if isinstance(data, dict):
        duration = data.get("duration_ms")
        if number_to_ms(duration) is not None:
            case.duration_ms = number_to_ms(duration)
    if case.status == "passed":
        return
    if not isinstance(data, dict):
        case.stack_trace = raw
        return
    message = data.get("message") or data.get("error")
    if isinstance(message, str):
        case.message = case.message or message
    kind = data.get("name") or data.get("failureType")
    if isinstance(kind, str):
        case.error_type = kind
    stack = data.get("stack") or data.get("at")
    case.stack_trace = stack if isinstance(stack, str) else raw


def _load_yaml(raw: str) -> Any:
    if len(raw) > _MAX_YAML:
        return None
    lines = raw.splitlines()
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    try:
        return yaml.safe_load("\n".join(line[indent:] for line in lines))
    except yaml.YAMLError:
        return None
