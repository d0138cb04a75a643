"""Streaming NUnit 3 (``<test-run>``) and NUnit 2 (``<test-results>``) XML parsers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.values import seconds_to_ms
from testledger.ingest.parsers.xml_safety import (
    Element,
    child_text,
    expect_root,
    iter_xml,
    local_name,
    name_value_pairs,
    release,
    text_of,
)

_NUNIT3_ERROR_LABELS = frozenset({"Error", "Cancelled", "Invalid"})
_NUNIT2_RESULTS = {"Success": "passed", "Failure": "failed", "Error": "error", "Cancelled": "error"}

_Builder = Callable[[Element, str], ParsedCase]


class NUnit3Parser:
    """NUnit 3 result files; a bare ``<test-suite>`` root (one assembly) is accepted too."""

    format = "nunit3"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(_walk(stream, name, info, _nunit3_case, nunit3=True), name=name, what="NUnit 3 XML")


class NUnit2Parser:
    """NUnit 2.x result files (``<test-results>`` root with ``executed``/``success`` attributes)."""

    format = "nunit2"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(_walk(stream, name, info, _nunit2_case, nunit3=False), name=name, what="NUnit 2 XML")


def assembly_name(path: str) -> str:
    """The file name of an assembly path, so a suite keeps its identity across build machines."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _walk(stream: IO[bytes], name: str, info: ReportInfo, build: _Builder, *, nunit3: bool) -> Iterator[ParsedCase]:
    roots = ("test-run", "test-suite") if nunit3 else ("test-results",)
    what = "an NUnit 3 report" if nunit3 else "an NUnit 2 report"
    info.dialect = "nunit3" if nunit3 else "nunit2"
    assembly: str | None = None
    first = True
    for event, elem in iter_xml(stream, name=name, what=what):
        tag = local_name(elem.tag)
        if event == "start":
            if first:
                expect_root(elem, roots, name=name, what=what)
                first = False
            if tag == "test-suite" and assembly is None:
                suite_type = elem.get("type")
                if suite_type in (None, "Assembly") or not nunit3:
                    assembly = assembly_name(elem.get("name") or "")
            continue
        if tag == "test-case":
            yield build(elem, assembly or "")
            release(elem)
        elif tag == "test-suite":
            release(elem)


def _nunit3_case(elem: Element, suite: str) -> ParsedCase:
    result = elem.get("result") or ""
    label = elem.get("label") or ""
    if result == "Failed":
        status = "error" if label in _NUNIT3_ERROR_LABELS else "failed"
    elif result in ("Passed", "Warning"):
        status = "passed"
    else:
        status = "skipped"
    case = ParsedCase(
        name=elem.get("name") or elem.get("fullname") or "",
        status=status,
        suite=suite,
        classname=elem.get("classname") or "",
        duration_ms=seconds_to_ms(elem.get("duration")),
    )
    if result not in ("Passed", "Failed", "Skipped") or label:
        case.properties = {"original_status": f"{result}:{label}" if label else result}
    _read_outcome(elem, case)
    return case


def _nunit2_case(elem: Element, suite: str) -> ParsedCase:
    full_name = elem.get("name") or ""
    result = elem.get("result")
    if result is not None:
        status = _NUNIT2_RESULTS.get(result, "skipped")
    elif elem.get("executed") == "False":
        status = "skipped"
    elif elem.get("success") == "False" or child_text(elem, "failure") is not None:
        status = "failed"
    else:
        status = "passed"
    classname, _, short = _split_method(full_name)
    case = ParsedCase(
        name=short,
        status=status,
        suite=suite,
        classname=classname,
        duration_ms=seconds_to_ms(elem.get("time")),
    )
    if result is not None and result not in _NUNIT2_RESULTS:
        case.properties = {"original_status": result}
    _read_outcome(elem, case)
    return case


def _split_method(full_name: str) -> tuple[str, str, str]:
    """``Ns.Class.Method(1,"a.b")`` → (``Ns.Class``, ``.``, ``Method(1,"a.b")``)."""
    plain = full_name.split("(", 1)[0]
    dot = plain.rfind(".")
    if dot < 0:
        return "", "", full_name
    return full_name[:dot], ".", full_name[dot + 1 :]


def _read_outcome(elem: Element, case: ParsedCase) -> None:
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        tag = local_name(child.tag)
        if tag == "failure":
            case.message = child_text(child, "message") or None
            case.stack_trace = child_text(child, "stack-trace") or None
        elif tag == "reason":
            case.message = case.message or child_text(child, "message") or None
        elif tag == "output":
            case.stdout = text_of(child) or None
        elif tag == "attachments":
            case.attachments = [path for path in (child_text(item, "filePath") for item in child) if path]
        elif tag == "properties":
            case.properties = name_value_pairs(child, "property", case.properties)

