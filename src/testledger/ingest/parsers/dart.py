"""Dart / Flutter ``--reporter json`` parser: a stream of JSON events, one per line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from testledger.ingest.model import ParsedCase, ReportInfo, ReportParseError
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.json_document import as_dict, as_str
from testledger.ingest.parsers.junit_case import first_line
from testledger.ingest.parsers.values import clean, duration_ms

_RESULTS = {"success": "passed", "failure": "failed", "error": "error"}


@dataclass(slots=True)
class _Running:
    case: ParsedCase
    started: float | None
    errors: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)


class DartParser:
    """Each visible ``testDone`` is one case; hidden tests ("loading x.dart") count only if they fail."""

    format = "dart"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="Dart JSON")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        suites: dict[object, str] = {}
        running: dict[object, _Running] = {}
        seen_events = False
        for raw in stream:
            event = _event(raw)
            kind = event.get("type")
            seen_events = seen_events or kind is not None
            if kind == "suite":
                suite = as_dict(event.get("suite"))
                suites[suite.get("id")] = as_str(suite.get("path")) or ""
            elif kind == "testStart":
                test = as_dict(event.get("test"))
                case = ParsedCase(name=as_str(test.get("name")) or "", status="passed")
                case.suite = suites.get(test.get("suiteID"), "")
                running[test.get("id")] = _Running(case, _time(event))
            elif kind in ("error", "print"):
                _attach(running.get(event.get("testID")), event)
            elif kind == "testDone":
                done = running.pop(event.get("testID"), None)
                if done is not None:
                    finished = _finish(done, event)
                    if finished is not None:
                        yield finished
        if not seen_events:
            raise ReportParseError("no Dart test events found (expected a --reporter json stream)", file=name)


def _event(raw: bytes) -> dict[str, Any]:
    line = raw.strip()
    if not line.startswith(b"{"):
        return {}
    try:
        return as_dict(json.loads(line))
    except (ValueError, RecursionError):
        return {}


def _time(event: dict[str, Any]) -> float | None:
    value = event.get("time")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _attach(running: _Running | None, event: dict[str, Any]) -> None:
    if running is None:
        return
    if event.get("type") == "print":
        running.output.append(as_str(event.get("message")) or "")
        return
    error = as_str(event.get("error")) or ""
    stack = as_str(event.get("stackTrace")) or ""
    running.errors.append(f"{error}\n{stack}".strip())
    if running.case.message is None:
        running.case.message = first_line(error)
        running.case.error_type = "failure" if event.get("isFailure") else "error"


def _finish(running: _Running, event: dict[str, Any]) -> ParsedCase | None:
    case = running.case
    case.status = _RESULTS.get(as_str(event.get("result")) or "", "error")
    if event.get("skipped") is True:
        case.status = "skipped"
    if event.get("hidden") is True and case.status in ("passed", "skipped"):
        return None
    ended = _time(event)
    if ended is not None and running.started is not None and ended >= running.started:
        case.duration_ms = duration_ms(ended - running.started)
    if running.errors:
        case.stack_trace = clean("\n\n".join(running.errors))
    if running.output:
        case.stdout = "\n".join(running.output)
    return case
