"""Streaming JUnit XML parser for every common dialect (Surefire, pytest, jest-junit, gotestsum, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from testledger.ingest.model import ParsedCase, ReportInfo, ReportParseError, SuiteInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.junit_case import build_case, first_line, read_properties
from testledger.ingest.parsers.values import NANOSECOND_THRESHOLD
from testledger.ingest.parsers.xml_safety import (
    Element,
    iter_xml,
    local_name,
    release,
    source_line,
    text_of,
)

_ROOTS = ("testsuites", "testsuite")
_SUITE_CHILDREN = frozenset({"properties", "property", "system-out", "system-err", "failure", "error"})


@dataclass(slots=True)
class _Suite:
    name: str
    info: SuiteInfo


class JUnitParser:
    """``<testsuites>``/``<testsuite>`` documents, suites nested at any depth."""

    format = "junit"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(_JUnitReader(name, info).cases(stream), name=name, what="JUnit XML")


class _JUnitReader:
    """Walks start/end events keeping only the open suites; each case is freed once yielded."""

    def __init__(self, name: str, info: ReportInfo) -> None:
        self.name = name
        self.info = info
        self.suites: list[_Suite] = []
        self.nanos = False
        self.sniffed_case = False

    def cases(self, stream: IO[bytes]) -> Iterator[ParsedCase]:
        # The hot loop: one start and one end event per element, so per-event work is kept to
        # plain local-variable operations (see tests/ingest/junit_speed.py).
        path: list[str] = []
        push, pop = path.append, path.pop
        suite = ""
        nanos = False
        for event, elem in iter_xml(stream, name=self.name, what="JUnit XML"):
            if event == "start":
                tag = elem.tag
                if tag[0] == "{":
                    tag = local_name(tag)
                if not path:
                    self._open_root(elem, tag)
                    nanos = self.nanos
                if tag == "testsuite":
                    suite = self._open_suite(elem)
                push(tag)
                continue
            tag = pop()
            if tag == "testcase":
                case = build_case(elem, suite=suite, nanos=nanos)
                if self.info.dialect is None and (case.attempts or not self.sniffed_case):
                    self._sniff_case(elem, case)
                yield case
                # release(elem), inline: once per case
                elem.clear()
                parent = elem.getparent()
                if parent is not None:
                    while elem.getprevious() is not None:
                        del parent[0]
            elif tag == "testsuite":
                self.suites.pop()
                suite = self.suites[-1].name if self.suites else ""
                release(elem)
            elif path and path[-1] in _ROOTS and tag in _SUITE_CHILDREN:
                self._suite_child(elem, tag)
                release(elem)

    def _open_root(self, elem: Element, tag: str) -> None:
        if tag not in _ROOTS:
            raise ReportParseError(
                f"not a JUnit report: root element <{tag}> (expected <testsuites> or <testsuite>)",
                file=self.name,
                line=source_line(elem),
            )
        total = elem.get("time", "")
        # container-structure-test writes integer nanoseconds everywhere; its total says so.
        self.nanos = total.isascii() and total.isdigit() and int(total) >= NANOSECOND_THRESHOLD
        if self.info.dialect is None:
            self.info.dialect = _root_dialect(elem)

    def _open_suite(self, elem: Element) -> str:
        suite_name = elem.get("name") or ""
        suite_info = SuiteInfo(
            name=suite_name,
            timestamp=elem.get("timestamp") or None,
            hostname=elem.get("hostname") or None,
        )
        self.info.suites.append(suite_info)
        self.suites.append(_Suite(suite_name, suite_info))
        if self.info.dialect is None:
            self.info.dialect = _suite_dialect(elem)
        return suite_name

    def _sniff_case(self, elem: Element, case: ParsedCase) -> None:
        """Case-level dialect hints: the first case's attributes, or Surefire's rerun elements."""
        if not self.sniffed_case:
            self.sniffed_case = True
            self.info.dialect = _case_dialect(elem, case)
        if case.attempts and self.info.dialect is None:
            self.info.dialect = "surefire"

    def _suite_child(self, elem: Element, tag: str) -> None:
        if not self.suites:
            if tag in ("failure", "error"):
                self._note_orphan(elem, tag, "<testsuites>")
            return
        suite = self.suites[-1].info
        if tag == "system-out":
            suite.stdout = (suite.stdout or "") + (text_of(elem) or "") or None
        elif tag == "system-err":
            suite.stderr = (suite.stderr or "") + (text_of(elem) or "") or None
        elif tag in ("properties", "property"):
            suite.properties = read_properties(elem, suite.properties)
            if self.info.dialect is None and suite.properties:
                self.info.dialect = _properties_dialect(suite.properties)
        else:
            self._note_orphan(elem, tag, f"suite {suite.name!r}")

    def _note_orphan(self, elem: Element, tag: str, where: str) -> None:
        message = elem.get("message") or first_line(text_of(elem)) or ""
        self.info.notes.append(f"<{tag}> directly under {where}, outside any test case: {message}".rstrip())


def _root_dialect(elem: Element) -> str | None:
    name = elem.get("name")
    if name == "jest tests":
        return "jest-junit"
    if name == "nextest-run":
        return "cargo-nextest"
    if name == "AllTests":
        return "googletest"
    if name == "" and elem.get("id") == "":
        return "playwright"
    return None


def _suite_dialect(elem: Element) -> str | None:
    schema = elem.get("{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation", "")
    if "surefire" in schema:
        return "surefire"
    if elem.get("name") == "pytest":
        return "pytest"
    if elem.get("hostname") == "tbd":
        return "catch2"
    if elem.get("filepath") is not None:
        return "minitest"
    return None


def _properties_dialect(properties: dict[str, str]) -> str | None:
    if "go.version" in properties:
        return "gotestsum"
    if any(key.startswith("surefire.") for key in properties):
        return "surefire"
    return None


def _case_dialect(elem: Element, case: ParsedCase) -> str | None:
    if elem.get("status") == "run" and elem.get("result") is not None:
        return "googletest"
    if elem.get("assertions") is not None and case.file is not None:
        return "phpunit"
    if " \u203a " in case.classname:
        # jest-junit's default classname joins describe() titles with U+203A.
        return "jest-junit"
    return None
