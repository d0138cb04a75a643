"""Format detection looks at content only: every fixture is recognised whatever its file name."""

from __future__ import annotations

import json

import pytest
from reading import FIXTURES

from testledger.ingest.detect import HEAD_SIZE, detect_format
from testledger.ingest.model import ReportParseError

FIXTURE_FORMATS = {
    "surefire-flaky.xml": "junit",
    "pytest-junit.xml": "junit",
    "nunit3.xml": "nunit3",
    "nunit2.xml": "nunit2",
    "xunit2.xml": "xunit2",
    "mstest.trx": "trx",
    "ctest-Test.xml": "ctest",
    "boost-log.xml": "boost",
    "cppunit.xml": "cppunit",
    "qtestlib.xml": "qttest",
    "check.xml": "check",
    "cunit.xml": "cunit",
    "ctrf.json": "ctrf",
    "cucumber.json": "cucumber",
    "mocha.json": "mocha",
    "jest.json": "jest",
    "rspec.json": "rspec",
    "dart.json": "dart",
    "gotest.json": "gotest",
    "tap14.tap": "tap",
}


@pytest.mark.parametrize(("file_name", "expected"), sorted(FIXTURE_FORMATS.items()))
@pytest.mark.parametrize("given_name", [None, "report.bin", "results.xml", "out.json"])
def test_fixtures_are_detected_from_content_not_name(file_name: str, expected: str, given_name: str | None) -> None:
    head = (FIXTURES / file_name).read_bytes()[:HEAD_SIZE]
    assert detect_format(head, name=given_name or file_name) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xef\xbb\xbf<?xml version='1.0'?><testsuites/>", "junit"),
        ("<?xml version='1.0' encoding='utf-16'?><testsuite/>".encode("utf-16"), "junit"),
        (b"<!-- generated --><!DOCTYPE x [ <!ELEMENT x ANY> ]><test-run/>", "nunit3"),
        (b'<test-suite type="Assembly" name="a.dll"/>', "nunit3"),
        (b'<assembly name="a.dll"><class name="C"/></assembly>', "xunit2"),
        (b"<TestRun><SuccessfulTests/></TestRun>", "cppunit"),
        (b"[]", "cucumber"),
        (b"ok 1 - only a test point\n", "tap"),
        (b"# comment first\nnot ok 1\n", "tap"),
        (b"garbage line\n" + json.dumps({"Action": "run", "Package": "p", "Test": "T"}).encode(), "gotest"),
    ],
)
def test_detection_edge_cases(head: bytes, expected: str) -> None:
    assert detect_format(head, name="x") == expected


def test_truncated_json_head_is_recognised_by_its_keys() -> None:
    big = {
        "stats": {"tests": 5000},
        "tests": [{"title": f"t{i}", "fullTitle": f"s t{i}", "err": {}} for i in range(5000)],
    }
    head = json.dumps(big).encode()[:HEAD_SIZE]
    assert len(head) == HEAD_SIZE
    assert detect_format(head, name="mocha.json") == "mocha"


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"", "empty document"),
        (b"  \n\t", "empty document"),
        (b"this is not a report\n", "not a test report"),
        (b'{"key": "val", malformed: "key"}', "not valid JSON"),
        (b'{"name": "a package.json"}', "JSON that is not a test report"),
        (b"<?xml version='1.0'?><catalog/>", "XML root element <catalog>"),
        (b"<!ENTITY % param1 '<!ENTITY oob SYSTEM \"x\">'>", "without a root element"),
        (b"\x00\x01\x02binary", "binary content"),
    ],
)
def test_non_reports_are_rejected_naming_the_file(head: bytes, reason: str) -> None:
    with pytest.raises(ReportParseError) as caught:
        detect_format(head, name="upload.dat")
    assert reason in str(caught.value)
    assert str(caught.value).startswith("upload.dat")


@pytest.mark.parametrize("depth", [5_000, 50_000])
def test_deeply_nested_json_is_rejected_not_crashing(depth: int) -> None:
    head = (b'{"a":' + b"[" * depth + b"]" * depth + b"}")[:HEAD_SIZE]
    with pytest.raises(ReportParseError):
        detect_format(head, name="deep.json")


def test_rejection_lists_the_formats_expected() -> None:
    with pytest.raises(ReportParseError, match="expected a JUnit, NUnit, xUnit, TRX, CTRF, TAP"):
        detect_format(b"hello", name="report.json")
