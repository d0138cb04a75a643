"""Property test: random JUnit documents written with lxml parse back to the same cases."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from testledger.ingest.model import ReportInfo
from testledger.ingest.parsers import get_parser
from testledger.ingest.parsers.junit_case import first_line

# XML 1.0 cannot carry control characters (other than tab/newline), surrogates or U+FFFE/FFFF.
_XML_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc", "Cn")),
        st.sampled_from("\t\n <>&\"'\u203a😀é\\]]>"),
    ),
    max_size=30,
)


@dataclass
class Spec:
    suite: str
    classname: str
    name: str
    status: str
    message: str
    text: str
    seconds: float | None


_SPECS = st.builds(
    Spec,
    suite=_XML_TEXT,
    classname=_XML_TEXT,
    name=_XML_TEXT,
    status=st.sampled_from(["passed", "failed", "error", "skipped"]),
    message=_XML_TEXT,
    text=_XML_TEXT,
    seconds=st.one_of(st.none(), st.floats(min_value=0, max_value=10_000, allow_nan=False)),
)


def _document(specs: list[Spec]) -> bytes:
    root = etree.Element("testsuites")
    for spec in specs:
        suite = etree.SubElement(root, "testsuite", name=spec.suite)
        case = etree.SubElement(suite, "testcase", name=spec.name, classname=spec.classname)
        if spec.seconds is not None:
            case.set("time", f"{spec.seconds:.6f}")
        tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(spec.status)
        if tag is not None:
            child = etree.SubElement(case, tag)
            if spec.message:
                child.set("message", spec.message)
            child.text = spec.text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _expected_message(spec: Spec) -> str | None:
    if spec.status == "passed":
        return None
    if spec.status == "skipped":
        return spec.message or spec.text or None
    return spec.message or first_line(spec.text)


@settings(max_examples=150, deadline=None)
@given(st.lists(_SPECS, max_size=8))
def test_random_junit_documents_round_trip(specs: list[Spec]) -> None:
    data = _document(specs)
    info = ReportInfo(format="junit")
    cases = list(get_parser("junit").parse(io.BytesIO(data), name="random.xml", info=info))
    assert [(c.suite, c.classname, c.name) for c in cases] == [(s.suite, s.classname, s.name) for s in specs]
    assert [c.status for c in cases] == [s.status for s in specs]
    assert [c.message for c in cases] == [_expected_message(s) for s in specs]
    for case, spec in zip(cases, specs, strict=True):
        if spec.seconds is None:
            assert case.duration_ms is None
        else:
            assert case.duration_ms == pytest.approx(round(spec.seconds, 6) * 1000, abs=1e-6)
        if spec.status in ("failed", "error"):
            assert case.stack_trace == (spec.text if spec.text.strip() else None)
