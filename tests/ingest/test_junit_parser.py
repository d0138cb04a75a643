"""JUnit XML: dialect features (Surefire reruns, nesting, odd times, properties, output, statuses)."""

from __future__ import annotations

import pytest
from reading import by_name, parse_as, parse_bytes, parse_fixture, statuses


def test_surefire_flaky_failure_is_a_passed_flaky_case_with_every_attempt() -> None:
    info, cases = parse_fixture("surefire-flaky.xml")
    case = by_name(cases)["checkoutWorks"]
    assert info.dialect == "surefire"
    assert case.status == "passed"
    assert case.flaky is True
    assert [a.status for a in case.attempts] == ["failed", "error", "passed"]
    first = case.attempts[0]
    assert first.message == "expected 3 but was 2"
    assert first.error_type == "java.lang.AssertionError"
    assert first.duration_ms == pytest.approx(400.0)
    assert first.stack_trace is not None and "ShopTest.java:42" in first.stack_trace
    assert first.stdout == "first try output"
    assert case.attempts[-1].duration_ms == pytest.approx(1250.0)


def test_surefire_rerun_failure_keeps_every_failed_attempt_and_is_not_flaky() -> None:
    _, cases = parse_fixture("surefire-flaky.xml")
    case = by_name(cases)["refundAlwaysFails"]
    assert case.status == "failed"
    assert case.flaky is False
    assert [a.status for a in case.attempts] == ["failed", "failed", "error"]
    assert [a.message for a in case.attempts] == ["refund rejected", "refund rejected again", "timeout"]
    assert case.attempts[0].stdout == "run 1 output"
    assert case.attempts[1].stdout == "run 2 output"


def test_suite_properties_and_skipped_message() -> None:
    info, cases = parse_fixture("surefire-flaky.xml")
    assert info.suites[0].properties == {"java.version": "17.0.2", "os.name": "Linux"}
    legacy = by_name(cases)["legacyTax"]
    assert (legacy.status, legacy.message) == ("skipped", "not supported on Linux")
    assert statuses(cases) == ["passed", "failed", "passed", "skipped"]


def test_pytest_report_statuses_output_and_odd_times() -> None:
    info, cases = parse_fixture("pytest-junit.xml")
    assert info.dialect == "pytest"
    named = by_name(cases)
    assert named["test_add[a-<b>]"].duration_ms == pytest.approx(500.0)
    assert (named["test_add[a-<b>]"].file, named["test_add[a-<b>]"].line) == ("tests/test_cart.py", 11)
    remove = named["test_remove"]
    assert remove.duration_ms is None  # negative time
    assert (remove.stdout, remove.stderr) == ("captured out", "captured err")
    assert remove.stack_trace is not None and remove.stack_trace.startswith("def test_remove():\n>")
    assert named["test_teardown"].duration_ms is None  # empty time
    assert named["test_skip"].message == "needs network"
    assert named["test_disabled"].status == "skipped"
    assert named["test_disabled"].properties == {"original_status": "disabled"}
    assert info.suites[0].stdout == "suite output"
    assert info.suites[0].hostname == "ci-7"


def test_several_failures_and_errors_in_one_case_are_all_kept_error_first() -> None:
    _, cases = parse_fixture("pytest-junit.xml")
    case = by_name(cases)["test_teardown"]
    assert case.status == "error"
    assert case.message == "teardown exploded"
    assert case.error_type == "RuntimeError"
    assert case.stack_trace == "trace one\n\ntrace two"


def test_failure_without_message_attribute_uses_its_first_line_and_unicode_survives() -> None:
    _, cases = parse_fixture("pytest-junit.xml")
    case = by_name(cases)["test_unicode_😀_ünï"]
    assert case.message == "only a text body"
    assert case.stack_trace == "only a text body\nsecond line"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<skipped/><failure message='f'/><error message='e'/>", "error"),
        ("<skipped/><failure message='f'/>", "failed"),
        ("<skipped/>", "skipped"),
        ("", "passed"),
    ],
)
def test_status_precedence(body: str, expected: str) -> None:
    doc = f"<testsuite name='s'><testcase classname='c' name='t'>{body}</testcase></testsuite>"
    _, cases = parse_bytes(doc.encode())
    assert statuses(cases) == [expected]


@pytest.mark.parametrize("word", ["disabled", "notrun", "skipped", "ignored", "NotRun"])
def test_status_attribute_words_mean_skipped(word: str) -> None:
    doc = f"<testsuites><testsuite><testcase name='t' status='{word}'/></testsuite></testsuites>"
    _, cases = parse_bytes(doc.encode())
    assert statuses(cases) == ["skipped"]


def test_googletest_result_skipped_and_notrun() -> None:
    doc = b"""<testsuites name="AllTests"><testsuite name="S">
      <testcase name="a" status="run" result="completed" time="0" classname="S"/>
      <testcase name="b" status="run" result="skipped" time="0" classname="S"/>
      <testcase name="DISABLED_c" status="notrun" result="suppressed" time="0" classname="S"/>
    </testsuite></testsuites>"""
    info, cases = parse_bytes(doc)
    assert info.dialect == "googletest"
    assert statuses(cases) == ["passed", "skipped", "skipped"]


def test_nested_suites_at_any_depth_name_the_nearest_suite() -> None:
    doc = b"""<testsuites><testsuite name="outer">
      <testcase name="a"/>
      <testsuite name="middle"><testsuite name="inner"><testcase name="b"/></testsuite>
        <testcase name="c"/></testsuite>
      <testcase name="d"/>
    </testsuite></testsuites>"""
    info, cases = parse_bytes(doc)
    assert [(c.suite, c.name) for c in cases] == [("outer", "a"), ("inner", "b"), ("middle", "c"), ("outer", "d")]
    assert [s.name for s in info.suites] == ["outer", "middle", "inner"]


def test_bare_testsuite_root_and_missing_attributes() -> None:
    _, cases = parse_bytes(b"<testsuite><testcase/></testsuite>")
    assert [(c.name, c.classname, c.suite, c.duration_ms, c.status) for c in cases] == [("", "", "", None, "passed")]


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("1.5", 1500.0),
        ("1,234.5", 1234500.0),
        ("-3", None),
        ("", None),
        ("abc", None),
        ("NaN", None),
        ("0", 0.0),
        ("\u00b2", None),
    ],
)
def test_odd_time_values(time: str, expected: float | None) -> None:
    _, cases = parse_bytes(f"<testsuite><testcase name='t' time='{time}'/></testsuite>".encode())
    assert cases[0].duration_ms == (pytest.approx(expected) if expected is not None else None)


def test_non_ascii_digits_in_numeric_attributes_are_ignored() -> None:
    doc = "<testsuites time='\u00b2'><testsuite><testcase name='t' file='a.py' line='\u00b2'/></testsuite></testsuites>"
    _, cases = parse_bytes(doc.encode())
    assert (cases[0].file, cases[0].line) == ("a.py", None)


def test_integer_nanosecond_times_from_container_structure_test() -> None:
    doc = b"""<testsuites failures="0" tests="2" time="1967986371"><testsuite>
      <testcase name="Command Test" time="999638317"></testcase>
      <testcase name="Metadata Test" time="2500"></testcase>
    </testsuite></testsuites>"""
    _, cases = parse_bytes(doc)
    assert cases[0].duration_ms == pytest.approx(999.638317)
    assert cases[1].duration_ms == pytest.approx(0.0025)


def test_properties_without_wrapper_and_at_case_level() -> None:
    doc = b"""<testsuites><testsuite name="all">
      <property name="random_seed" value="1685297974"/>
      <testcase name="t"><properties>
        <property name="key" value="1"/><property name="text">body</property>
      </properties></testcase>
    </testsuite></testsuites>"""
    info, cases = parse_bytes(doc)
    assert info.suites[0].properties == {"random_seed": "1685297974"}
    assert cases[0].properties == {"key": "1", "text": "body"}


def test_failure_directly_under_a_suite_is_a_note_not_a_test() -> None:
    doc = b"""<testsuite name="S"><error message="class not found" type="NoClassDefFoundError">trace</error>
      <system-out><![CDATA[]]></system-out></testsuite>"""
    info, cases = parse_bytes(doc)
    assert cases == []
    assert info.notes == ["<error> directly under suite 'S', outside any test case: class not found"]


def test_entities_cdata_and_characters_outside_the_bmp() -> None:
    doc = """<testsuite><testcase name="a &amp; b &lt;c&gt; &quot;d&quot; &#x1F600;">
      <failure message="&apos;x&apos;"><![CDATA[<raw> & ]]]]><![CDATA[> text]]></failure></testcase></testsuite>"""
    _, cases = parse_bytes(doc.encode())
    assert cases[0].name == 'a & b <c> "d" 😀'
    assert cases[0].message == "'x'"
    assert cases[0].stack_trace == "<raw> & ]]> text"


@pytest.mark.parametrize(
    ("root", "dialect"),
    [
        (
            '<testsuites name="jest tests"><testsuite name="x"><testcase name="t"/></testsuite></testsuites>',
            "jest-junit",
        ),
        (
            '<testsuites id="" name=""><testsuite name="a.spec.ts"><testcase name="t"/></testsuite></testsuites>',
            "playwright",
        ),
        (
            '<testsuites name="nextest-run"><testsuite name="x"><testcase name="t"/></testsuite></testsuites>',
            "cargo-nextest",
        ),
        (
            '<testsuites><testsuite name="pkg"><properties><property name="go.version" value="go1.22"/></properties>'
            '<testcase name="TestX" classname="pkg"/></testsuite></testsuites>',
            "gotestsum",
        ),
        (
            '<testsuites><testsuite name="S"><testcase name="t" file="/a/T.php" assertions="1"/>'
            "</testsuite></testsuites>",
            "phpunit",
        ),
    ],
)
def test_dialects(root: str, dialect: str) -> None:
    info, _ = parse_bytes(root.encode())
    assert info.dialect == dialect


def test_pytest_rerunfailures_duplicates_are_left_for_storage_to_merge() -> None:
    doc = b"""<testsuite name="pytest"><testcase classname="m" name="t"><failure message="1"/></testcase>
      <testcase classname="m" name="t"><failure message="2"/></testcase>
      <testcase classname="m" name="t"/></testsuite>"""
    _, cases = parse_as("junit", doc)
    assert statuses(cases) == ["failed", "failed", "passed"]
    assert all(case.attempts == [] for case in cases)


def test_comments_and_processing_instructions_are_ignored() -> None:
    doc = b"""<?xml version="1.0"?><!-- head --><?xml-stylesheet href="x.xsl"?>
      <testsuite><!-- c --><testcase name="t"><!-- c -->
      <failure message="m">a<!-- c -->b</failure></testcase></testsuite>"""
    _, cases = parse_bytes(doc)
    assert (cases[0].status, cases[0].stack_trace) == ("failed", "ab")
