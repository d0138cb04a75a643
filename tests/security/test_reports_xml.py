"""Attacks through XML reports, end to end on SQLite and PostgreSQL: each is refused, nothing is stored.

The parser-level checks of the same defences live in tests/ingest/test_xml_safety.py.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from testledger.ingest.model import ReportInfo, ReportParseError
from testledger.ingest.parsers import get_parser, parse_report

SECRET = "TOP-SECRET-PAYLOAD-4711"
CASE = '<testcase classname="app.Login" name="test_ok"/>'


def refused(cli: Any, path: Path, *reason: str) -> str:
    """Ingest `path`; assert exit 3, one clear line naming the file, no traceback, no run stored."""
    result = cli("ingest", str(path), "--pipeline", "p")
    assert result.code == 3, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {path.name}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    for word in reason:
        assert word in result.stderr
    assert "nothing was stored" in result.stderr
    assert json.loads(cli("runs", "list", "--json").stdout) == []
    return str(result.stderr)


@pytest.mark.parametrize(
    "subset",
    [
        '<!ATTLIST testcase classname CDATA "INJECTED">',
        '<!ATTLIST testcase classname CDATA #FIXED "INJECTED">',
        "<!ELEMENT testcase ANY>",
        "",  # an empty subset is still a subset: nothing about it is needed
        "<!-- only a comment -->",
    ],
)
def test_any_internal_subset_is_refused(cli: Any, tmp_path: Path, subset: str) -> None:
    path = tmp_path / "attlist.xml"
    path.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE testsuite [{subset}]>\n<testsuite>{CASE}</testsuite>')
    refused(cli, path, "internal subset")


def test_attribute_default_never_rewrites_a_test_identity() -> None:
    doc = f'<!DOCTYPE testsuites [ <!ATTLIST testcase classname CDATA "INJECTED"> ]><testsuites>{CASE}</testsuites>'
    with pytest.raises(ReportParseError, match="internal subset"):
        parse_report(io.BytesIO(doc.encode()), name="a.xml")
    # A DOCTYPE pushed past the first 64 KiB by comments cannot be inspected: refused as well.
    padded = "<?xml version='1.0'?>" + "<!-- pad -->" * 6000 + doc
    with pytest.raises(ReportParseError, match=r"DOCTYPE that cannot be checked .* first 64 KiB"):
        list(get_parser("junit").parse(io.BytesIO(padded.encode()), name="a.xml", info=ReportInfo(format="junit")))


def test_a_doctype_naming_an_external_dtd_only_is_still_read_without_loading_it(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "dtd.xml"
    path.write_text(f'<!DOCTYPE testsuite SYSTEM "http://example.invalid/x.dtd [1]">\n<testsuite>{CASE}</testsuite>')
    result = cli("ingest", str(path), "--pipeline", "p", "--json")
    assert result.code == 0, result.stderr
    assert [c["case_key"] for c in json.loads(result.stdout)["cases"]] == ["app.Login::test_ok"]


def test_external_entity_is_refused_and_the_secret_never_read(cli: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    path = tmp_path / "xxe.xml"
    path.write_text(f'<!DOCTYPE testsuite [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
                    '<testsuite><testcase name="t"><failure message="&x;">&x;</failure></testcase></testsuite>')
    assert SECRET not in refused(cli, path, "declares entities")


def test_billion_laughs_is_refused(cli: Any, tmp_path: Path) -> None:
    entities = '<!ENTITY a0 "lollollollol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    path = tmp_path / "lol.xml"
    path.write_text(f'<!DOCTYPE testsuite [{entities}]><testsuite><testcase name="&a9;"/></testsuite>')
    refused(cli, path, "declares entities")


def test_deep_nesting_is_refused(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "deep.xml"
    path.write_text("<testsuites>" + "<testsuite>" * 300 + CASE + "</testsuite>" * 300 + "</testsuites>")
    refused(cli, path, "not well-formed XML")


def test_invalid_utf8_is_refused(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "latin.xml"
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?><testsuite><testcase name="caf\xe9"/></testsuite>')
    refused(cli, path, "not well-formed XML")


def test_gzip_bomb_of_one_text_node_is_refused(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTLEDGER_MAX_REPORT_BYTES", str(1 << 20))
    path = tmp_path / "bomb.xml.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"<testsuite><testcase name='t'><system-out>")
        out.write(b"A" * (8 << 20))
        out.write(b"</system-out></testcase></testsuite>")
    refused(cli, path, "larger than the 1,048,576-byte limit", "TESTLEDGER_MAX_REPORT_BYTES")
