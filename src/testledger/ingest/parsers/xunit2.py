"""Streaming xUnit.net XML parser: v2 ``<assemblies>``/``<collection>`` and v1 ``<assembly>``/``<class>``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.nunit import assembly_name
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

_RESULTS = {"Pass": "passed", "Fail": "failed"}


class XUnit2Parser:
    """Each ``<test>`` is one case; ``result`` Pass/Fail map directly, anything else is skipped."""

    format = "xunit2"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name, info), name=name, what="xUnit.net XML")

    def _cases(self, stream: IO[bytes], name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        assembly = ""
        first = True
        for event, elem in iter_xml(stream, name=name, what="an xUnit.net report"):
            tag = local_name(elem.tag)
            if event == "start":
                if first:
                    root = expect_root(elem, ("assemblies", "assembly"), name=name, what="an xUnit.net report")
                    info.dialect = "xunit.net-v2" if root == "assemblies" else "xunit.net-v1"
                    first = False
                if tag == "assembly":
                    assembly = assembly_name(elem.get("name") or "")
                continue
            if tag == "test":
                yield _case(elem, assembly)
                release(elem)
            elif tag in ("collection", "class", "assembly"):
                release(elem)


def _case(elem: Element, assembly: str) -> ParsedCase:
    result = elem.get("result") or ""
    full_name = elem.get("name") or ""
    classname = elem.get("type") or ""
    case = ParsedCase(
        name=full_name,
        status=_RESULTS.get(result, "skipped"),
        suite=assembly,
        classname=classname,
        duration_ms=seconds_to_ms(elem.get("time")),
    )
    if result not in ("Pass", "Fail", "Skip"):
        case.properties = {"original_status": result}
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        tag = local_name(child.tag)
        if tag == "failure":
            case.error_type = child.get("exception-type") or None
            case.message = child_text(child, "message") or None
            case.stack_trace = child_text(child, "stack-trace") or None
        elif tag == "reason":
            case.message = text_of(child) or None
        elif tag == "output":
            case.stdout = text_of(child) or None
        elif tag == "traits":
            case.properties = name_value_pairs(child, "trait", case.properties)
    return case

