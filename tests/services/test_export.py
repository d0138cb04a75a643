"""Export: a JUnit or CTRF report ingested and exported again keeps cases, statuses, messages, durations."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from testledger.db.engine import Store
from testledger.schemas import IngestOptions
from testledger.services import runs
from testledger.services.export import export_run
from testledger.services.ingest import ingest_files

Case = tuple[str, str, str, str | None, float]  # classname, name, status, message, seconds


def ingest_bytes(store: Store, data: bytes, name: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        with store.write() as db:
            options = IngestOptions(actor="t", max_report_bytes=1 << 24, pipeline_key="rt", environment="ci",
                                    allowed_environments=("ci",))
            return ingest_files(db, workspace="WKS", sources=[path], options=options).run_key


def export_bytes(store: Store, key: str, fmt: str) -> bytes:
    out = io.BytesIO()
    with store.read() as db:
        export_run(db, workspace="WKS", key=key, format=fmt, out=out)
    return out.getvalue()


def snapshot(store: Store, key: str) -> list[tuple[object, ...]]:
    with store.read() as db:
        e = runs.get_execution(db, workspace="WKS", key=key)
    return [(c.classname, c.name, c.status, c.error, c.duration_ms) for c in e.cases or []]


def junit_doc(cases: list[Case]) -> bytes:
    suite = etree.Element("testsuite", name="generated")
    for classname, name, status, message, seconds in cases:
        tc = etree.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
        if status != "passed":
            el = etree.SubElement(tc, {"failed": "failure", "error": "error", "skipped": "skipped"}[status])
            if message is not None:
                el.set("message", message)
    return etree.tostring(suite, xml_declaration=True, encoding="utf-8")


xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"), min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s.strip() != "")
cases_strategy = st.lists(
    st.tuples(xml_text, xml_text, st.sampled_from(["passed", "failed", "error", "skipped"]),
              st.none() | xml_text, st.floats(min_value=0, max_value=5000, allow_nan=False)),
    min_size=1, max_size=12, unique_by=lambda c: (c[0], c[1]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=cases_strategy)
def test_junit_round_trip_keeps_cases(store: Store, cases: list[Case]) -> None:
    first = ingest_bytes(store, junit_doc(cases), "in.xml")
    second = ingest_bytes(store, export_bytes(store, first, "junit"), "out.xml")
    assert snapshot(store, first) == snapshot(store, second)
    assert [(c[1], c[2].upper()) for c in cases] == [(n, s) for _, n, s, _, _ in snapshot(store, first)]


def test_ctrf_round_trip_and_retries(store: Store) -> None:
    report = {"results": {"tool": {"name": "jest"}, "summary": {"tests": 3, "passed": 1, "failed": 1, "skipped": 1,
                                                                "pending": 0, "other": 0, "start": 0, "stop": 1},
              "tests": [
                  {"name": "logs in", "status": "passed", "duration": 120, "suite": "auth", "flaky": True,
                   "retries": 1, "retryAttempts": [{"attempt": 1, "status": "failed", "duration": 80,
                                                    "message": "timeout waiting for #login"}]},
                  {"name": "pays", "status": "failed", "duration": 300, "suite": "cart",
                   "message": "Expected 200, got 500", "trace": "at pay.spec.ts:10"},
                  {"name": "refunds", "status": "skipped", "duration": 0, "suite": "cart"},
              ]}}
    first = ingest_bytes(store, json.dumps(report).encode(), "ctrf.json")
    exported = export_bytes(store, first, "ctrf")
    data = json.loads(exported)
    assert data["results"]["summary"]["tests"] == 3
    flaky = data["results"]["tests"][0]
    assert flaky["flaky"] is True and flaky["retries"] == 1 and flaky["retryAttempts"][0]["status"] == "failed"
    second = ingest_bytes(store, exported, "again.json")
    assert snapshot(store, first) == snapshot(store, second)
    with store.read() as db:
        assert runs.get_execution(db, workspace="WKS", key=second).totals.flaky == 1


def test_junit_export_writes_surefire_flaky_elements(store: Store) -> None:
    doc = (b'<testsuite name="s"><testcase classname="c" name="t" time="1"><failure message="x"/></testcase>'
           b'<testcase classname="c" name="t" time="1"/></testsuite>')
    key = ingest_bytes(store, doc, "r.xml")
    root = etree.fromstring(export_bytes(store, key, "junit"))
    case = root.find(".//testcase")
    assert case is not None and case.find("flakyFailure") is not None and case.find("failure") is None
    again = ingest_bytes(store, etree.tostring(root), "again.xml")
    with store.read() as db:
        e = runs.get_execution(db, workspace="WKS", key=again)
    assert (e.totals.tests, e.totals.passed, e.totals.flaky) == (1, 1, 1)
