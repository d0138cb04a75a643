"""``go test -json`` (test2json) parser, read line by line: one case per terminal test event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from testledger.ingest.model import ParsedCase, ReportInfo, ReportParseError
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.json_document import as_dict, as_str
from testledger.ingest.parsers.values import number_to_ms

_TERMINAL = {"pass": "passed", "fail": "failed", "skip": "skipped"}
_NOISE_PREFIXES = ("=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- FAIL", "--- PASS", "--- SKIP")


@dataclass(slots=True)
class _Running:
    #: False while only output has been seen: test2json can print a test's lines after its
    #: outcome, and such leftovers must not become a phantom unfinished test.
    ran: bool = False
    output: list[str] = field(default_factory=list)
    properties: dict[str, str] | None = None


class GoTestParser:
    """Subtests and reruns each count; package-level outcomes become notes, never cases."""

    format = "gotest"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(_GoTestReader(name, info).cases(stream), name=name, what="go test JSON")


class _GoTestReader:
    def __init__(self, name: str, info: ReportInfo) -> None:
        self.name = name
        self.info = info
        self.running: dict[tuple[str, str], _Running] = {}

    def cases(self, stream: IO[bytes]) -> Iterator[ParsedCase]:
        events = 0
        ignored = 0
        for raw in stream:
            event = _event(raw)
            if event is None:
                ignored += bool(raw.strip())
                continue
            events += 1
            yield from self._handle(event)
        if events == 0:
            raise ReportParseError("no go test JSON events found (expected `go test -json` output)", file=self.name)
        for package in sorted({package for package, _ in self.running}):
            yield from self._finish_package(package, failed=False)
        if ignored:
            self.info.notes.append(f"{ignored} non-JSON line(s) ignored")

    def _handle(self, event: dict[str, Any]) -> Iterator[ParsedCase]:
        action = as_str(event.get("Action")) or ""
        package = as_str(event.get("Package")) or as_str(event.get("ImportPath")) or ""
        test = as_str(event.get("Test"))
        if test is None:
            if action in _TERMINAL:
                yield from self._finish_package(package, failed=action == "fail")
            elif action == "build-fail":
                self.info.notes.append(f"package {package}: build failed")
            return
        key = (package, test)
        if action == "run":
            self.running[key] = _Running(ran=True)
        elif action == "output":
            self.running.setdefault(key, _Running()).output.append(as_str(event.get("Output")) or "")
        elif action == "attr":
            running = self.running.setdefault(key, _Running())
            attr, value = (as_str(event.get(k)) or str(event.get(k)) for k in ("Key", "Value"))
            running.properties = {**(running.properties or {}), attr: value}
        elif action in _TERMINAL:
            running = self.running.pop(key, _Running())
            yield _case(package, test, _TERMINAL[action], running, elapsed=event.get("Elapsed"))

    def _finish_package(self, package: str, *, failed: bool) -> Iterator[ParsedCase]:
        """Tests of a finished package that never reported an outcome: failed with it, or dropped."""
        if failed:
            self.info.notes.append(f"package {package}: FAIL")
        unfinished = [key for key in self.running if key[0] == package]
        for key in unfinished:
            running = self.running.pop(key)
            if not running.ran:
                continue
            if failed:
                case = _case(package, key[1], "failed", running, elapsed=None)
                case.message = case.message or "test did not finish (its package failed)"
                yield case
            else:
                self.info.notes.append(f"{package} {key[1]}: started but reported no outcome; not counted")


def _event(raw: bytes) -> dict[str, Any] | None:
    line = raw.strip()
    if not line.startswith(b"{"):
        return None
    try:
        event = as_dict(json.loads(line))
    except (ValueError, RecursionError):
        return None
    return event if "Action" in event else None


def _case(package: str, test: str, status: str, running: _Running, *, elapsed: object) -> ParsedCase:
    case = ParsedCase(
        name=test,
        status=status,
        suite=package,
        classname=package,
        duration_ms=number_to_ms(elapsed, scale=1000.0),
        properties=running.properties,
    )
    if running.output:
        case.stdout = "".join(running.output)
        if status != "passed":
            case.message = _first_message(running.output)
    return case


def _first_message(lines: list[str]) -> str | None:
    """The first line the test itself wrote (t.Error, t.Skip, a panic), skipping test2json framing."""
    for line in lines:
        text = line.strip()
        if text and not text.startswith(_NOISE_PREFIXES):
            return text
    return None
