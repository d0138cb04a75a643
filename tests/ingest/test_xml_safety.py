"""Hostile and broken XML: external entities, entity bombs, truncation, NUL bytes, wrong documents."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from reading import parse_as, parse_bytes

from testledger.ingest.model import ParsedCase, ReportInfo, ReportParseError
from testledger.ingest.parsers import get_parser

SECRET = "TOP-SECRET-PAYLOAD-4711"
XML_FORMATS = ["junit", "nunit3", "nunit2", "xunit2", "trx", "ctest", "boost", "cppunit", "qttest", "check", "cunit"]


def _all_text(cases: list[ParsedCase]) -> str:
    fields = [(c.name, c.message, c.stack_trace, c.stdout, c.stderr, str(c.properties)) for c in cases]
    return "\n".join(str(value) for row in fields for value in row)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def test_external_entity_is_refused_and_the_file_never_read(secret_file: Path) -> None:
    doc = f"""<?xml version="1.0"?>
<!DOCTYPE testsuite [ <!ENTITY xxe SYSTEM "{secret_file.as_uri()}"> ]>
<testsuite><testcase name="t"><failure message="&xxe;">&xxe;</failure></testcase></testsuite>"""
    with pytest.raises(ReportParseError) as caught:
        parse_bytes(doc.encode(), name="xxe.xml")
    assert "declares entities" in str(caught.value)
    assert str(caught.value).startswith("xxe.xml:")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("format_id", ["junit", "nunit2"])
def test_external_entity_via_an_external_dtd_is_never_expanded(
    tmp_path: Path, secret_file: Path, format_id: str
) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(f'<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">')
    root = "testsuite" if format_id == "junit" else "test-results"
    case = (
        '<testcase name="t"><failure message="m">&xxe;</failure></testcase>'
        if format_id == "junit"
        else '<test-case name="a.t" executed="True" success="False">'
        "<failure><message>&xxe;</message></failure></test-case>"
    )
    doc = f'<?xml version="1.0"?>\n<!DOCTYPE {root} SYSTEM "{dtd.as_uri()}">\n<{root}>{case}</{root}>'
    try:
        _, cases = parse_as(format_id, doc.encode())
    except ReportParseError as exc:
        assert SECRET not in str(exc)
    else:
        assert SECRET not in _all_text(cases)


def test_external_parameter_entity_probe_is_refused(tmp_path: Path, secret_file: Path) -> None:
    doc = f"""<?xml version="1.0"?>
<!DOCTYPE r [ <!ENTITY % sp SYSTEM "{(tmp_path / "oob.dtd").as_uri()}"> %sp; ]>
<testsuite><testcase name="&oob;"/></testsuite>"""
    (tmp_path / "oob.dtd").write_text(f"<!ENTITY oob SYSTEM '{secret_file.as_uri()}'>")
    with pytest.raises(ReportParseError) as caught:
        parse_as("junit", doc.encode())
    assert SECRET not in str(caught.value)


def test_billion_laughs_is_rejected_quickly() -> None:
    entities = '<!ENTITY lol0 "lollollollollollollollollollol">\n' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10)
    )
    for body in ('<testcase name="&lol9;"/>', "<testcase name='t'><failure>&lol9;</failure></testcase>"):
        doc = f'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n{entities}]>\n<testsuite>{body}</testsuite>'
        started = time.perf_counter()
        with pytest.raises(ReportParseError):
            parse_as("junit", doc.encode())
        assert time.perf_counter() - started < 1.0


def test_truncated_xml_names_the_file_and_line() -> None:
    doc = b'<?xml version="1.0"?>\n<testsuite>\n  <testcase name="a"/>\n  <testcase name="b">\n    <skipped'
    with pytest.raises(ReportParseError) as caught:
        parse_bytes(doc, name="junit.xml")
    message = str(caught.value)
    assert message.startswith("junit.xml:5: not well-formed XML (")
    assert caught.value.file == "junit.xml"
    assert caught.value.line == 5


def test_mismatched_tag_is_reported_with_its_line() -> None:
    doc = b"<testsuites>\n<testsuite>\n<testcase name='a'>\n</testsuite>\n</testsuites>"
    with pytest.raises(ReportParseError) as caught:
        parse_bytes(doc, name="junit.xml")
    assert str(caught.value).startswith("junit.xml:4: not well-formed XML (")
    assert "mismatch" in str(caught.value)


def test_unclosed_cdata_gets_a_readable_reason() -> None:
    doc = b"<testsuite>\n<testcase name='a'>\n<system-out><![CDATA[half"
    with pytest.raises(ReportParseError, match="unclosed CDATA section"):
        parse_bytes(doc, name="junit.xml")


def test_nul_byte_is_rejected_with_its_line() -> None:
    doc = b"<testsuite>\n<testcase name='a'>\n<failure>x\x00y</failure></testcase></testsuite>"
    with pytest.raises(ReportParseError) as caught:
        parse_bytes(doc, name="n.xml")
    assert caught.value.line == 3


def test_lt_inside_attribute_value_is_rejected() -> None:
    with pytest.raises(ReportParseError, match="not well-formed XML"):
        parse_bytes(b'<testsuite><testcase name="a" time="<<computed>>"/></testsuite>', name="w.xml")


@pytest.mark.parametrize("data", [b"", b"   \n", b"\xef\xbb\xbf"])
def test_empty_document_is_rejected(data: bytes) -> None:
    with pytest.raises(ReportParseError, match="empty"):
        parse_bytes(data, name="empty.xml")
    with pytest.raises(ReportParseError, match="empty"):
        parse_as("junit", data, name="empty.xml")


def test_well_formed_xml_of_another_kind_is_rejected_by_detection_and_by_every_xml_parser() -> None:
    doc = b'<?xml version="1.0"?><catalog><book id="1"><title>XML</title></book></catalog>'
    with pytest.raises(ReportParseError, match=r"not a test report: XML root element <catalog>"):
        parse_bytes(doc, name="c.xml")
    for format_id in XML_FORMATS:
        with pytest.raises(ReportParseError, match="root element <catalog>"):
            parse_as(format_id, doc, name="c.xml")


def test_jenkins_internal_storage_is_rejected_with_a_hint() -> None:
    doc = b"<?xml version='1.0'?><result><suites><suite><name>S</name></suite></suites><duration>1</duration></result>"
    with pytest.raises(ReportParseError, match="Jenkins' internal test-result storage"):
        parse_bytes(doc, name="junitResult.xml")


def test_doctype_without_entities_is_accepted_and_its_dtd_not_loaded() -> None:
    doc = b"""<?xml version="1.0"?><!DOCTYPE testsuite SYSTEM "http://example.invalid/junit.dtd">
      <testsuite><testcase name="t"/></testsuite>"""
    _, cases = parse_bytes(doc)
    assert [c.name for c in cases] == ["t"]


@pytest.mark.parametrize(
    "prolog",
    [
        "<!-- an old header: <!DOCTYPE testsuite [ <!ENTITY x 'y'> ]> -->",
        "<?generator note='<!DOCTYPE x [ ]>'?>",
        '<!DOCTYPE testsuite SYSTEM "junit[1].dtd">',
        "<!DOCTYPE testsuite PUBLIC '-//Example//DTD JUnit//EN' 'junit>1.dtd'>",
    ],
)
def test_doctype_text_in_comments_or_quotes_is_not_an_internal_subset(prolog: str) -> None:
    _, cases = parse_bytes(f'<?xml version="1.0"?>\n{prolog}\n<testsuite><testcase name="t"/></testsuite>'.encode())
    assert [c.name for c in cases] == ["t"]


@pytest.mark.parametrize(
    ("subset", "refusal"),
    [
        ("<!ENTITY a 'x]>y'> <!ENTITY b SYSTEM 'file:///etc/passwd'>", "declares entities (a, b)"),
        ("<!-- ]> --> <!ENTITY % p 'x'>", "declares entities (%p)"),
        ("<!ELEMENT testsuite ANY>", "has an internal subset"),
        ("", "has an internal subset"),
    ],
)
def test_internal_subset_is_refused_before_the_parser_reads_it(subset: str, refusal: str) -> None:
    doc = f'<?xml version="1.0"?>\n\n<!DOCTYPE testsuite [{subset}]>\n<testsuite><testcase name="t"/></testsuite>'
    with pytest.raises(ReportParseError) as caught:
        parse_bytes(doc.encode(), name="d.xml")
    assert str(caught.value).startswith(f"d.xml:3: refused: the DOCTYPE {refusal}")


def test_internal_subset_in_utf16_is_refused() -> None:
    doc = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE testsuite [<!ENTITY x "y">]><testsuite/>'
    with pytest.raises(ReportParseError, match=r"declares entities \(x\)"):
        parse_bytes(doc.encode("utf-16"), name="u.xml")


def test_doctype_in_an_encoding_the_scan_cannot_read_is_refused() -> None:
    # UTF-16 without a byte order mark: libxml2 reads it, the text scan does not.
    for doctype in ('<!DOCTYPE testsuite [<!ENTITY x "y">]>', '<!DOCTYPE testsuite SYSTEM "x.dtd">'):
        doc = f'<?xml version="1.0" encoding="UTF-16"?>{doctype}<testsuite/>'
        with pytest.raises(ReportParseError, match="cannot be checked for entity declarations"):
            parse_as("junit", doc.encode("utf-16-le"))


def test_an_error_after_some_cases_still_is_a_report_parse_error() -> None:
    # Large enough that libxml2 meets the error in a later chunk than the first cases
    # (lxml >= 6.2 drops a chunk's events when that chunk holds an error).
    doc = b"<testsuite>" + b"<testcase name='a'/>" * 20_000 + b"<testcase name='c'></testsuite>"
    stream = get_parser("junit").parse(io.BytesIO(doc), name="p.xml", info=ReportInfo(format="junit"))
    seen = []
    with pytest.raises(ReportParseError) as caught:
        for case in stream:
            seen.append(case.name)
    assert seen and set(seen) == {"a"}
    assert str(caught.value).startswith("p.xml:1: not well-formed XML (")
