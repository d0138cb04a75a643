"""Streaming MSTest TRX parser: ``UnitTestResult`` outcomes joined with their ``UnitTest`` definitions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.nunit import assembly_name
from testledger.ingest.parsers.values import timespan_to_ms
from testledger.ingest.parsers.xml_safety import (
    ClosedElements,
    Element,
    child_text,
    local_name,
    release,
    text_of,
)

_OUTCOMES = {
    "Passed": "passed",
    "Failed": "failed",
    "Error": "error",
    "Timeout": "error",
    "Aborted": "error",
}


@dataclass(slots=True, frozen=True)
class _Definition:
    classname: str
    suite: str


class TrxParser:
    """Visual Studio / ``dotnet test`` TRX files (TeamTest 2006 and 2010 namespaces)."""

    format = "trx"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="TRX")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        # A result names its test by id; the class lives in <TestDefinitions>, which newer
        # writers put after <Results>. Results seen before their definition wait in memory.
        definitions: dict[str, _Definition] = {}
        waiting: list[tuple[str, ParsedCase]] = []
        for _depth, tag, elem in ClosedElements(stream, name=name, what="a TRX report", roots=("TestRun",)):
            if tag == "UnitTestResult" and _is_top_level(elem):
                test_id, case = _result(elem)
                known = definitions.get(test_id)
                if known is None:
                    waiting.append((test_id, case))
                else:
                    yield _joined(case, known)
                release(elem)
            elif tag == "UnitTest":
                definitions[elem.get("id") or ""] = _definition(elem)
                release(elem)
        for test_id, case in waiting:
            yield _joined(case, definitions.get(test_id, _Definition("", "")))


def _is_top_level(elem: Element) -> bool:
    parent = elem.getparent()
    return parent is None or local_name(parent.tag) == "Results"


def _definition(elem: Element) -> _Definition:
    classname = ""
    for child in elem:
        if isinstance(child.tag, str) and local_name(child.tag) == "TestMethod":
            # Old writers append the assembly: "Ns.Class, Assembly, Version=1.0.0.0, ...".
            classname = (child.get("className") or "").split(",", 1)[0].strip()
    return _Definition(classname=classname, suite=assembly_name(elem.get("storage") or ""))


def _joined(case: ParsedCase, definition: _Definition) -> ParsedCase:
    case.classname = definition.classname
    case.suite = definition.suite
    return case


def _result(elem: Element) -> tuple[str, ParsedCase]:
    outcome = elem.get("outcome") or ""
    case = ParsedCase(
        name=elem.get("testName") or "",
        status=_OUTCOMES.get(outcome, "skipped"),
        duration_ms=timespan_to_ms(elem.get("duration")),
    )
    if outcome not in ("Passed", "Failed", "NotExecuted"):
        case.properties = {"original_status": outcome}
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        tag = local_name(child.tag)
        if tag == "Output":
            _read_output(child, case)
        elif tag == "ResultFiles":
            case.attachments = [item.get("path") or "" for item in child if isinstance(item.tag, str)]
    return elem.get("testId") or "", case


def _read_output(elem: Element, case: ParsedCase) -> None:
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        tag = local_name(child.tag)
        if tag == "StdOut":
            case.stdout = text_of(child) or None
        elif tag == "StdErr":
            case.stderr = text_of(child) or None
        elif tag == "ErrorInfo":
            case.message = child_text(child, "Message") or None
            case.stack_trace = child_text(child, "StackTrace") or None
