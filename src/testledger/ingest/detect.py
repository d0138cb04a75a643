"""Report format detection from content (never the file name): the first 64 KiB decide."""

from __future__ import annotations

import json
import re

from testledger.ingest.model import ReportParseError
from testledger.ingest.prolog import read_prolog

#: How much of a report ``detect_format`` looks at; callers pass at most this many bytes.
HEAD_SIZE = 64 * 1024

EXPECTED = "a JUnit, NUnit, xUnit, TRX, CTRF, TAP, go test, Cucumber, mocha or jest document"

_XML_ROOTS = {
    "testsuites": "junit",
    "testsuite": "junit",
    "assemblies": "xunit2",
    "assembly": "xunit2",
    "test-run": "nunit3",
    "test-suite": "nunit3",
    "test-results": "nunit2",
    "Site": "ctest",
    "TestLog": "boost",
    "TestResult": "boost",
    "TestCase": "qttest",
    "CUNIT_TEST_RUN_REPORT": "cunit",
}
_CHECK_NAMESPACE = b"check.sourceforge.net"
_TRX_NAMESPACE = b"microsoft.com/schemas/VisualStudio/TeamTest"

_TAP_LINE = re.compile(r"^\s*(?:TAP version \d+|1\.\.\d+|(?:not )?ok\b|Bail out!)", re.IGNORECASE)


def detect_format(head: bytes, *, name: str) -> str:
    """The format id of a report whose first bytes are ``head`` (already decompressed).

    Raises :class:`ReportParseError` for empty input and for content that is no known report.
    """
    text = _decode(head)
    stripped = text.lstrip()
    if not stripped:
        raise ReportParseError(f"empty document (expected {EXPECTED})", file=name)
    if stripped[0] == "<":
        # A NUL inside XML is left for the XML parser, which names the line it is on.
        return _detect_xml(stripped, head, name=name)
    if "\x00" in stripped:
        raise ReportParseError(f"binary content, not a test report (expected {EXPECTED})", file=name)
    if stripped[0] in "{[":
        found = _detect_json(stripped, complete=len(head) < HEAD_SIZE, name=name)
        if found is not None:
            return found
    lines_kind = _json_lines_kind(text)
    if lines_kind is not None:
        return lines_kind
    if any(_TAP_LINE.match(line) for line in text.splitlines()):
        return "tap"
    raise ReportParseError(f"not a test report (expected {EXPECTED})", file=name)


def _decode(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def _detect_xml(text: str, head: bytes, *, name: str) -> str:
    root = read_prolog(text).root
    if root is None:
        raise ReportParseError(f"XML without a root element in its first 64 KiB (expected {EXPECTED})", file=name)
    if root == "TestRun":
        return "trx" if _TRX_NAMESPACE in head else "cppunit"
    if root == "testsuites" and _CHECK_NAMESPACE in head[: head.find(b">", head.find(b"<testsuites")) + 1]:
        return "check"
    found = _XML_ROOTS.get(root)
    if root == "result":
        raise ReportParseError(
            "Jenkins' internal test-result storage (junitResult.xml), not a report: "
            "ingest the original JUnit XML files instead",
            file=name,
        )
    if found is None:
        raise ReportParseError(f"not a test report: XML root element <{root}> (expected {EXPECTED})", file=name)
    return found


def _detect_json(text: str, *, complete: bool, name: str) -> str | None:
    lines_kind = _json_lines_kind(text)
    if lines_kind is not None:
        return lines_kind
    if complete:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportParseError(
                f"not valid JSON ({exc.msg}, column {exc.colno})", file=name, line=exc.lineno
            ) from None
        except RecursionError:
            raise ReportParseError("JSON nested too deeply to be a test report", file=name) from None
        kind = _json_kind(document)
        if kind is None:
            raise ReportParseError(f"JSON that is not a test report (expected {EXPECTED})", file=name)
        return kind
    return _sniff_json_keys(text)


def _json_lines_kind(text: str) -> str | None:
    """go test -json and the dart/flutter reporter write one JSON event per line."""
    for line in text.splitlines()[:50]:
        line = line.strip()
        if not line.startswith("{") or not line.endswith("}"):
            continue
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(event, dict):
            if "Action" in event and ("Package" in event or "Time" in event):
                return "gotest"
            if "protocolVersion" in event or (event.get("type") in ("start", "suite", "testStart")):
                return "dart"
    return None


def _json_kind(document: object) -> str | None:
    if isinstance(document, list):
        if all(isinstance(item, dict) and ("elements" in item or "keyword" in item) for item in document):
            return "cucumber"
        return None
    if not isinstance(document, dict):
        return None
    results = document.get("results")
    if isinstance(results, dict) and ("tests" in results or "tool" in results):
        return "ctrf"
    if "testResults" in document or "numTotalTests" in document:
        return "jest"
    if "examples" in document and ("summary_line" in document or "version" in document):
        return "rspec"
    if "tests" in document and ("stats" in document or "passes" in document or "pending" in document):
        return "mocha"
    return None


_KEY = re.compile(r'"(results|tool|testResults|numTotalTests|examples|summary_line|stats|passes|elements|keyword)"\s*:')


def _sniff_json_keys(text: str) -> str | None:
    """A head cut at 64 KiB is not parseable JSON; its keys still say which report it is."""
    keys = set(_KEY.findall(text))
    if text[0] == "[" and keys & {"elements", "keyword"}:
        return "cucumber"
    if "results" in keys and "tool" in keys:
        return "ctrf"
    if keys & {"testResults", "numTotalTests"}:
        return "jest"
    if "examples" in keys and "summary_line" in keys:
        return "rspec"
    if keys & {"stats", "passes"}:
        return "mocha"
    if "examples" in keys:
        return "rspec"
    return None
