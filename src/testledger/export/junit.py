"""JUnit XML export, streamed: one <testsuite> per suite, and one per pipeline case whose tests are
sub-results (they stay under it); Surefire's flaky/rerun elements for attempts; indented lines."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import chain, groupby
from typing import IO, Any

from lxml import etree

from testledger.export.rows import ExportRow
from testledger.schemas import ExecutionOut

# XML 1.0 cannot carry most control characters; they are replaced rather than failing the export.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_INDENT = "  "


def _clean(text: str | None) -> str:
    return _INVALID_XML.sub("\ufffd", text or "")


def _seconds(ms: float | None) -> str:
    return "0" if ms is None else f"{ms / 1000:.6f}".rstrip("0").rstrip(".") or "0"


def write_junit(execution: ExecutionOut, rows: Iterable[ExportRow], out: IO[bytes]) -> None:
    """The header counts the tests (leaf results), which are exactly the <testcase> entries."""
    t = execution.totals
    owner = execution.pipeline_key or execution.execution_id
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        attrs = {
            "name": owner, "tests": str(t.tests), "failures": str(t.failed), "errors": str(t.errors),
            "skipped": str(t.skipped), "time": _seconds(execution.duration_ms),
        }
        with xf.element("testsuites", attrs):
            for name, group, members in _suites(rows, default=execution.execution_id):
                xf.write("\n" + _INDENT)
                suite_attrs = {"name": _clean(name)}
                if group is not None:
                    suite_attrs["time"] = _seconds(group.duration_ms)
                with xf.element("testsuite", suite_attrs):
                    if group is not None:
                        _write(xf, _group_properties(group))
                    for row in members:
                        _write(xf, _testcase(row, default_class=owner))
                    if group is not None and group.stdout:
                        _write(xf, _text_element("system-out", group.stdout))
                    xf.write("\n" + _INDENT)
            xf.write("\n")
    out.write(b"\n")


def _write(xf: Any, element: Any) -> None:
    etree.indent(element, space=_INDENT, level=2)
    xf.write("\n" + _INDENT * 2)
    xf.write(element)
    xf.flush()


def _suites(rows: Iterable[ExportRow], *, default: str) -> Iterator[tuple[str, ExportRow | None, Iterator[ExportRow]]]:
    """(suite name, its pipeline case when it is one, its test rows): consecutive results of one
    suite form one <testsuite>, which keeps the stored order; a group's tests form their own."""

    def owner(row: ExportRow) -> tuple[str, Any]:
        if row.group:
            return "group", row.idx
        if row.parent_idx is not None:
            return "group", row.parent_idx
        return "suite", row.suite

    # Each group's rows are consumed by the caller before the next group is asked for, as groupby needs.
    for _owner, members in groupby(rows, key=owner):
        first = next(members)
        if first.group:
            yield first.name, first, members  # noqa: B031
        else:  # (sub-results whose pipeline case is missing keep a suite of their own)
            yield first.suite or default, None, chain([first], members)  # noqa: B031


def _group_properties(group: ExportRow) -> Any:
    """What the pipeline case itself recorded: its index (for `runs case`), key, status, message."""
    props = etree.Element("properties")
    values = {"testledger.case": str(group.idx), "testledger.key": group.key or "", "testledger.status": group.status,
              "testledger.message": group.message or ""}
    for key, value in values.items():
        if value:
            etree.SubElement(props, "property", name=key, value=_clean(value))
    return props


def _text_element(tag: str, text: str) -> Any:
    element = etree.Element(tag)
    element.text = _clean(text)
    return element


def _testcase(row: ExportRow, *, default_class: str) -> Any:
    # A classname is what JUnit readers group by; results without one (pipeline cases, some
    # formats) get their suite's, or the pipeline's.
    classname = row.classname or row.suite or default_class
    case = etree.Element("testcase", name=_clean(row.name), classname=_clean(classname),
                         time=_seconds(row.duration_ms))
    if row.properties:
        props = etree.SubElement(case, "properties")
        for key, value in row.properties.items():
            etree.SubElement(props, "property", name=_clean(key), value=_clean(str(value)))
    if row.status in ("failed", "error"):
        tag = "failure" if row.status == "failed" else "error"
        _outcome(case, tag, row.message, row.error_type, row.stack_trace)
    elif row.status == "skipped":
        skipped = etree.SubElement(case, "skipped")
        if row.message:
            skipped.set("message", _clean(row.message))
    for attempt in (row.attempts or [])[:-1]:
        if attempt.get("status") in ("failed", "error"):
            prefix = "flaky" if row.status == "passed" else "rerun"
            tag = prefix + ("Failure" if attempt["status"] == "failed" else "Error")
            _outcome(case, tag, attempt.get("message"), attempt.get("error_type"), attempt.get("stack_trace"))
    if row.stdout:
        etree.SubElement(case, "system-out").text = _clean(row.stdout)
    if row.stderr:
        etree.SubElement(case, "system-err").text = _clean(row.stderr)
    return case


def _outcome(case: Any, tag: str, message: str | None, error_type: str | None, trace: str | None) -> None:
    el = etree.SubElement(case, tag)
    if message is not None:
        el.set("message", _clean(message))
    if error_type:
        el.set("type", _clean(error_type))
    if trace:
        el.text = _clean(trace)
