"""A test's name, class and suite are stored exactly as the report spells them, whatever the characters
(on PostgreSQL new tests travel as one JSON document: quotes, backslashes and non-ASCII must survive it)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from sqlalchemy import text

from testledger.caseid import case_id, reported_identity
from testledger.db.engine import Store
from testledger.schemas import IngestOptions
from testledger.services.ingest import ingest_files

NAMES = [
    'test_quote["double"]', "test_quote['single']", "test_back\\slash\\n", "tëst_ünïcode_名前", "test_emoji_😀",
    "test {braces} and, commas", "test\ttab", 'a"b\\c', "NULL", "",
]


def test_names_of_new_tests_are_stored_exactly(store: Store, tmp_path: Path) -> None:
    cases = "".join(
        f"<testcase classname={quoteattr('pkg.Class' + str(n))} name={quoteattr(name)} time=\"0.1\"/>"
        for n, name in enumerate(NAMES)
    )
    report = tmp_path / "TEST-names.xml"
    report.write_text(f'<testsuite name="suite \\ &quot;x&quot; é">{cases}</testsuite>', encoding="utf-8")
    options = IngestOptions(actor="ci", max_report_bytes=1 << 20, pipeline_key="unit", environment="ci",
                            allowed_environments=("ci",), trigger="api")
    with store.write() as db:
        ingest_files(db, workspace="WKS", sources=[report], options=options)
    with store.read() as db:
        workspace = db.scalar(text("SELECT id FROM workspaces WHERE key = 'WKS'"))
        stored = {row.id: (row.suite, row.classname, row.name, row.identity)
                  for row in db.execute(text("SELECT id, suite, classname, name, identity FROM cases"))}
        results = db.scalar(text("SELECT count(*) FROM case_results r JOIN cases c ON c.id = r.case_id"))
    suite = 'suite \\ "x" é'
    expected = {}
    for n, name in enumerate(NAMES):
        identity = reported_identity(suite, f"pkg.Class{n}", name)
        expected[case_id(workspace, identity)] = (suite, f"pkg.Class{n}", name, identity)
    assert stored == expected
    assert results == len(NAMES)  # every result finds its test
