"""Property test: truncated or corrupted reports of every format fail only with ReportParseError."""

from __future__ import annotations

import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reading import FIXTURES

from testledger.ingest.model import ReportInfo, ReportParseError
from testledger.ingest.parsers import PARSERS, parse_report

_FIXTURES = {path.name: path.read_bytes() for path in sorted(FIXTURES.iterdir())}


def _parse_or_reject(data: bytes) -> None:
    try:
        parse_report(io.BytesIO(data), name="hostile")
    except ReportParseError as exc:
        assert str(exc).startswith("hostile")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(_FIXTURES)), cut=st.floats(min_value=0, max_value=1))
def test_truncated_reports_parse_or_are_rejected_cleanly(name: str, cut: float) -> None:
    data = _FIXTURES[name]
    _parse_or_reject(data[: int(len(data) * cut)])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(_FIXTURES)),
    where=st.floats(min_value=0, max_value=1),
    junk=st.binary(min_size=1, max_size=8),
)
def test_corrupted_reports_parse_or_are_rejected_cleanly(name: str, where: float, junk: bytes) -> None:
    data = _FIXTURES[name]
    at = int(len(data) * where)
    _parse_or_reject(data[:at] + junk + data[at + len(junk) :])


@settings(max_examples=100, deadline=None)
@given(format_id=st.sampled_from(sorted(PARSERS)), data=st.binary(max_size=200))
def test_every_parser_turns_random_bytes_into_cases_or_a_report_parse_error(format_id: str, data: bytes) -> None:
    with contextlib.suppress(ReportParseError):
        list(PARSERS[format_id].parse(io.BytesIO(data), name="noise", info=ReportInfo(format=format_id)))
