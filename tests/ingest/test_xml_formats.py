"""NUnit 2/3, xUnit.net, TRX and the C/C++ tools' XML: status mapping, identity fields, output."""

from __future__ import annotations

import pytest
from reading import by_name, parse_as, parse_fixture, statuses


def test_nunit3_labels_results_and_output() -> None:
    info, cases = parse_fixture("nunit3.xml")
    assert info.format == "nunit3"
    assert statuses(cases) == ["passed", "failed", "error", "skipped", "passed"]
    named = by_name(cases)
    removes = named["RemovesItem"]
    assert (removes.suite, removes.classname) == ("Shop.Tests.dll", "Shop.Tests.CartTests")
    assert removes.message == "Expected: 0  But was: 1"
    assert removes.stack_trace == "at Shop.Tests.CartTests.RemovesItem() in CartTests.cs:line 30"
    assert removes.stdout == "removing item"
    assert removes.duration_ms == pytest.approx(20.0)
    assert named["Maybe"].properties == {"original_status": "Inconclusive"}
    assert named["Warns"].properties == {"original_status": "Warning"}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ('result="Failed" label="Cancelled"', "error"),
        ('result="Failed" label="Invalid"', "error"),
        ('result="Skipped" label="Ignored"', "skipped"),
        ('result="Failed"', "failed"),
    ],
)
def test_nunit3_result_and_label(attributes: str, expected: str) -> None:
    doc = (
        f'<test-run><test-suite type="Assembly" name="a.dll"><test-case name="t" {attributes}/></test-suite></test-run>'
    )
    _, cases = parse_as("nunit3", doc.encode())
    assert statuses(cases) == [expected]


def test_nunit2_result_executed_and_success_attributes() -> None:
    _, cases = parse_fixture("nunit2.xml")
    assert statuses(cases) == ["passed", "failed", "skipped", "error"]
    assert [c.name for c in cases] == ["AddsItem", "RemovesItem", "Later", 'Sum(1.5,"a.b")']
    assert {c.classname for c in cases} == {"Shop.Tests.CartTests"}
    assert cases[0].suite == "Shop.Tests.dll"
    assert (cases[1].message, cases[1].stack_trace) == ("expected 0", "at CartTests.cs:30")
    assert cases[2].message == "ignored for now"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("Success", "passed"),
        ("Failure", "failed"),
        ("Error", "error"),
        ("Ignored", "skipped"),
        ("NotRunnable", "skipped"),
    ],
)
def test_nunit2_result_words(result: str, expected: str) -> None:
    case = f'<test-case name="N.C.t" result="{result}"/>'
    doc = f'<test-results><test-suite name="a.dll"><results>{case}</results></test-suite></test-results>'
    _, cases = parse_as("nunit2", doc.encode())
    assert statuses(cases) == [expected]


def test_xunit2_results_failure_reason_and_output() -> None:
    info, cases = parse_fixture("xunit2.xml")
    assert info.dialect == "xunit.net-v2"
    assert statuses(cases) == ["failed", "passed", "skipped"]
    failed, passed, skipped = cases
    assert (failed.error_type, failed.message) == ("Xunit.Sdk.TrueException", "Assert.True() Failure")
    assert failed.suite == "Shop.Tests.dll" and failed.classname == "Shop.Tests.CartTests"
    assert passed.stdout == "hello"
    assert skipped.message == "On purpose"


def test_xunit_v1_assembly_root() -> None:
    doc = b"""<assembly name="c:\\x\\A.dll" total="2"><class name="C" total="2">
      <test name="C.a" type="C" method="a" result="Pass" time="0.1"/>
      <test name="C.b" type="C" method="b" result="Fail" time="0.2"><failure><message>m</message></failure></test>
    </class></assembly>"""
    info, cases = parse_as("xunit2", doc)
    assert info.dialect == "xunit.net-v1"
    assert statuses(cases) == ["passed", "failed"]


def test_trx_outcomes_durations_and_classes_joined_by_test_id() -> None:
    _, cases = parse_fixture("mstest.trx")
    assert statuses(cases) == ["passed", "failed", "error", "skipped"]
    named = by_name(cases)
    assert named["AddsItem"].duration_ms == pytest.approx(1234.0)
    assert named["AddsItem"].stdout == "adding"
    assert named["RemovesItem"].classname == "Shop.Tests.CartTests"
    assert named["RemovesItem"].message == "Assert.AreEqual failed."
    assert named["Hangs"].classname == "Shop.Tests.SlowTests"
    assert named["Hangs"].duration_ms == pytest.approx(60000.0)
    assert {c.suite for c in cases} == {"shop.tests.dll"}


def test_trx_definitions_before_results_stream_without_waiting() -> None:
    doc = b"""<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
      <TestDefinitions><UnitTest id="a" storage="x.dll"><TestMethod className="K" name="m"/></UnitTest>
      </TestDefinitions>
      <Results><UnitTestResult testId="a" testName="m" outcome="Aborted" duration="1.02:03:04.5"/>
      </Results></TestRun>"""
    _, cases = parse_as("trx", doc)
    assert [(c.classname, c.status) for c in cases] == [("K", "error")]
    assert cases[0].duration_ms == pytest.approx(((24 + 2) * 3600 + 3 * 60 + 4.5) * 1000)


def test_ctest_dashboard() -> None:
    _, cases = parse_fixture("ctest-Test.xml")
    assert statuses(cases) == ["passed", "failed", "skipped"]
    assert cases[0].duration_ms == pytest.approx(250.0)
    assert cases[1].stdout == "read failed"
    assert cases[0].suite == "Linux-gcc"


def test_boost_test_log() -> None:
    _, cases = parse_fixture("boost-log.xml")
    assert statuses(cases) == ["passed", "failed", "error", "skipped"]
    assert cases[0].suite == "Master Test Suite/math"
    assert cases[0].duration_ms == pytest.approx(1.5)
    assert cases[1].message == "t.cpp:12: check sub(2,3) == 1 failed"


def test_cppunit() -> None:
    _, cases = parse_fixture("cppunit.xml")
    assert [(c.classname, c.name, c.status) for c in cases] == [
        ("MathTest", "testSum", "failed"),
        ("MathTest", "testCrash", "error"),
        ("MathTest", "testConstructor", "passed"),
    ]
    assert (cases[0].file, cases[0].line) == ("mathTest.cpp", 56)


def test_qtestlib_incidents_decide_per_function() -> None:
    _, cases = parse_fixture("qtestlib.xml")
    assert [(c.name, c.status) for c in cases] == [
        ("initTestCase", "passed"),
        ("toInt", "failed"),
        ("knownBug", "passed"),
        ("platformOnly", "skipped"),
    ]
    assert cases[1].duration_ms == pytest.approx(2.5)


def test_libcheck() -> None:
    _, cases = parse_fixture("check.xml")
    assert [(c.suite, c.name, c.status) for c in cases] == [
        ("list", "test_append", "passed"),
        ("list", "test_remove", "failed"),
        ("list", "test_crash", "error"),
    ]
    assert (cases[1].file, cases[1].line, cases[1].message) == ("test_list.c", 33, "expected 0")


def test_cunit_merges_failure_records_of_one_test_and_notes_suite_failures() -> None:
    info, cases = parse_fixture("cunit.xml")
    assert [(c.suite, c.name, c.status) for c in cases] == [
        ("Suite_1", "test_ok", "passed"),
        ("Suite_1", "test_bad", "failed"),
    ]
    assert cases[1].stack_trace == "t.c:10: 1 == 2\nt.c:11: 3 == 4"
    assert info.notes == ["suite 'Suite_2' failed: Suite Initialization Failed"]
