"""Streaming parsers for C/C++ tools' own XML: CTest, Boost.Test, CppUnit, QtTestLib, libcheck, CUnit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.values import duration_ms, number_to_ms, seconds_to_ms, to_int
from testledger.ingest.parsers.xml_safety import (
    ClosedElements,
    Element,
    child_text,
    expect_root,
    iter_xml,
    local_name,
    release,
    text_of,
)


def _children(elem: Element) -> Iterator[tuple[str, Element]]:
    for child in elem:
        if isinstance(child.tag, str):
            yield local_name(child.tag), child


def _strip(text: str | None) -> str:
    return text.strip() if text else ""


class CTestParser:
    """CTest dashboard ``Test.xml``: ``<Site><Testing><Test Status="passed|failed|notrun">``."""

    format = "ctest"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="CTest XML")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        walk = ClosedElements(stream, name=name, what="a CTest dashboard report", roots=("Site",))
        for _depth, tag, elem in walk:
            if tag == "Test" and elem.get("Status") is not None:
                yield _ctest_case(elem, walk.root_attribute("BuildName", "Name"))
                release(elem)


def _ctest_case(elem: Element, suite: str) -> ParsedCase:
    raw = elem.get("Status") or ""
    status = {"passed": "passed", "failed": "failed"}.get(raw, "skipped")
    case = ParsedCase(name=_strip(child_text(elem, "Name")), status=status, suite=suite)
    case.classname = _strip(child_text(elem, "Path"))
    for tag, child in _children(elem):
        if tag != "Results":
            continue
        for kind, measurement in _children(child):
            label = measurement.get("name")
            value = child_text(measurement, "Value")
            if kind == "Measurement":
                case.stdout = value or None
            elif label == "Execution Time":
                case.duration_ms = seconds_to_ms(value)
            elif label in ("Completion Status", "Exit Code", "Exit Value") and value and value.strip():
                case.properties = {**(case.properties or {}), label: value.strip()}
    if status == "failed":
        case.message = (case.properties or {}).get("Exit Code") or "test failed"
    if status == "skipped":
        case.properties = {**(case.properties or {}), "original_status": raw}
    return case


class BoostTestParser:
    """Boost.Test XML log (``<TestLog>``) or report (``<TestResult>``), suites nested by name."""

    format = "boost"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="Boost.Test XML")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        suites: list[str] = []
        first = True
        for event, elem in iter_xml(stream, name=name, what="a Boost.Test report"):
            tag = local_name(elem.tag)
            if event == "start":
                if first:
                    expect_root(elem, ("TestLog", "TestResult"), name=name, what="a Boost.Test report")
                    first = False
                if tag == "TestSuite":
                    suites.append(elem.get("name") or "")
                continue
            if tag == "TestCase":
                yield _boost_case(elem, "/".join(suites))
                release(elem)
            elif tag == "TestSuite":
                suites.pop()


def _boost_case(elem: Element, suite: str) -> ParsedCase:
    case = ParsedCase(name=elem.get("name") or "", status="passed", suite=suite)
    result = elem.get("result")
    if result is not None:
        # The report format (--report_format=XML) states the outcome as an attribute.
        case.status = {"passed": "passed", "skipped": "skipped", "aborted": "error"}.get(result, "failed")
    if elem.get("skipped") == "yes":
        case.status = "skipped"
    messages: list[str] = []
    for tag, child in _children(elem):
        if tag in ("Error", "FatalError", "Exception"):
            severity = "failed" if tag == "Error" else "error"
            if case.status != "error":
                case.status = severity
            text = _strip(text_of(child))
            where = f"{child.get('file', '')}:{child.get('line', '')}".strip(":")
            messages.append(f"{where}: {text}" if where else text)
        elif tag == "TestingTime":
            # Boost.Test logs microseconds.
            micros = to_int(text_of(child))
            case.duration_ms = None if micros is None else duration_ms(micros / 1000.0)
    if messages:
        case.message = messages[0]
        case.stack_trace = "\n".join(messages)
    return case


class CppUnitParser:
    """CppUnit ``<TestRun>`` with ``<FailedTests>`` and ``<SuccessfulTests>`` lists."""

    format = "cppunit"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="CppUnit XML")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        for depth, tag, elem in ClosedElements(stream, name=name, what="a CppUnit report", roots=("TestRun",)):
            if depth == 2 and tag in ("FailedTest", "Test"):
                yield _cppunit_case(elem, failed=tag == "FailedTest")
                release(elem)


def _cppunit_case(elem: Element, *, failed: bool) -> ParsedCase:
    full_name = _strip(child_text(elem, "Name"))
    classname, _, short = full_name.rpartition("::")
    case = ParsedCase(name=short, status="passed", classname=classname)
    if failed:
        kind = _strip(child_text(elem, "FailureType"))
        case.status = "error" if kind == "Error" else "failed"
        case.error_type = kind or None
        message = child_text(elem, "Message")
        case.message = _strip(message) or None
        case.stack_trace = message
        for tag, child in _children(elem):
            if tag == "Location":
                case.file = _strip(child_text(child, "File")) or None
                case.line = to_int(child_text(child, "Line"))
    return case


class QtTestParser:
    """QtTestLib XML: one ``<TestFunction>`` per case, its ``<Incident>`` types decide the status."""

    format = "qttest"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="QtTestLib XML")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        walk = ClosedElements(stream, name=name, what="a QtTestLib report", roots=("TestCase",))
        for _depth, tag, elem in walk:
            if tag == "TestFunction":
                yield _qt_case(elem, walk.root_attribute("name"))
                release(elem)


def _qt_case(elem: Element, suite: str) -> ParsedCase:
    kinds: list[str] = []
    problems: list[str] = []
    case = ParsedCase(name=elem.get("name") or "", status="passed", suite=suite, classname=suite)
    for tag, child in _children(elem):
        if tag == "Incident":
            kind = child.get("type") or ""
            kinds.append(kind)
            if kind in ("fail", "xpass", "bpass", "bfail"):
                description = _strip(child_text(child, "Description"))
                problems.append(f"{child.get('file', '')}:{child.get('line', '')}: {description}")
        elif tag == "Duration":
            case.duration_ms = number_to_ms(_float(child.get("msecs")))
    if any(kind in ("fail", "xpass") for kind in kinds):
        case.status = "failed"
    elif kinds and all(kind == "skip" for kind in kinds):
        case.status = "skipped"
    if problems:
        case.message = problems[0]
        case.stack_trace = "\n".join(problems)
    return case


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


class CheckParser:
    """libcheck XML: ``<testsuites xmlns="http://check.sourceforge.net/ns">``, ``<test result=...>``."""

    format = "check"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="libcheck XML")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        suite = ""
        for depth, tag, elem in ClosedElements(stream, name=name, what="a libcheck report", roots=("testsuites",)):
            if tag == "title" and depth == 2:
                suite = _strip(text_of(elem))
            elif tag == "test":
                yield _check_case(elem, suite)
                release(elem)


def _check_case(elem: Element, suite: str) -> ParsedCase:
    result = elem.get("result") or ""
    status = {"success": "passed", "failure": "failed", "error": "error"}.get(result, "skipped")
    case = ParsedCase(
        name=_strip(child_text(elem, "id")),
        status=status,
        suite=suite,
        classname=_strip(child_text(elem, "description")),
        duration_ms=seconds_to_ms(child_text(elem, "duration")),
    )
    location = _strip(child_text(elem, "fn"))
    if location:
        file, _, line = location.rpartition(":")
        case.file, case.line = (file, to_int(line)) if file else (location, None)
    if status != "passed":
        case.message = _strip(child_text(elem, "message")) or None
    return case


class CUnitParser:
    """CUnit automated-run XML (``CUNIT_TEST_RUN_REPORT``); several failure records of one test merge."""

    format = "cunit"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name, info), name=name, what="CUnit XML")

    def _cases(self, stream: IO[bytes], name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        suite = ""
        pending: ParsedCase | None = None
        roots = ("CUNIT_TEST_RUN_REPORT",)
        for _depth, tag, elem in ClosedElements(stream, name=name, what="a CUnit report", roots=roots):
            if tag == "SUITE_NAME":
                suite = _strip(text_of(elem))
            elif tag in ("CUNIT_RUN_TEST_SUCCESS", "CUNIT_RUN_TEST_FAILURE"):
                case = _cunit_case(elem, suite, failed=tag.endswith("FAILURE"))
                if pending is not None and (pending.suite, pending.name) == (case.suite, case.name):
                    _merge_failure(pending, case)
                    continue
                if pending is not None:
                    yield pending
                pending = case
            elif tag == "CUNIT_RUN_SUITE_FAILURE":
                reason = _strip(child_text(elem, "FAILURE_REASON"))
                info.notes.append(f"suite {_strip(child_text(elem, 'SUITE_NAME'))!r} failed: {reason}")
        if pending is not None:
            yield pending


def _cunit_case(elem: Element, suite: str, *, failed: bool) -> ParsedCase:
    case = ParsedCase(name=_strip(child_text(elem, "TEST_NAME")), status="passed", suite=suite)
    if failed:
        case.status = "failed"
        case.file = _strip(child_text(elem, "FILE_NAME")) or None
        case.line = to_int(child_text(elem, "LINE_NUMBER"))
        case.message = _strip(child_text(elem, "CONDITION")) or None
        case.stack_trace = f"{case.file}:{case.line}: {case.message}"
    return case


def _merge_failure(into: ParsedCase, more: ParsedCase) -> None:
    if more.status == "failed":
        if into.status != "failed":
            into.status, into.message, into.file, into.line = "failed", more.message, more.file, more.line
        into.stack_trace = "\n".join(t for t in (into.stack_trace, more.stack_trace) if t)
