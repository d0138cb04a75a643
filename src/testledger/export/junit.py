"""JUnit XML export, streamed: one <testsuite> per suite, Surefire's flaky/rerun elements for attempts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import groupby
from typing import IO, Any

from lxml import etree

from testledger.export.rows import ExportRow
from testledger.schemas import ExecutionOut

# XML 1.0 cannot carry most control characters; they are replaced rather than failing the export.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str | None) -> str:
    return _INVALID_XML.sub("\ufffd", text or "")


def _seconds(ms: float | None) -> str:
    return "0" if ms is None else f"{ms / 1000:.6f}".rstrip("0").rstrip(".") or "0"


def write_junit(execution: ExecutionOut, rows: Iterable[ExportRow], out: IO[bytes]) -> None:
    t = execution.totals
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        attrs = {
            "name": execution.pipeline_key or execution.execution_id, "tests": str(t.tests),
            "failures": str(t.failed), "errors": str(t.errors), "skipped": str(t.skipped),
            "time": _seconds(execution.duration_ms),
        }
        with xf.element("testsuites", attrs):
            # Consecutive results of one suite form one <testsuite>, which keeps the stored order.
            for suite, group in groupby(rows, key=lambda r: r.suite):
                with xf.element("testsuite", {"name": _clean(suite or execution.execution_id)}):
                    for row in group:
                        xf.write(_testcase(row))
                        xf.flush()


def _testcase(row: ExportRow) -> Any:
    case = etree.Element("testcase", name=_clean(row.name), classname=_clean(row.classname),
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
