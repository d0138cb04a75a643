"""Shared test plumbing for the parser tests: parse bytes or a fixture file the way callers do."""

from __future__ import annotations

import io
from pathlib import Path

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers import get_parser, parse_report

FIXTURES = Path(__file__).parent / "fixtures"


def parse_bytes(data: bytes, *, name: str = "report") -> tuple[ReportInfo, list[ParsedCase]]:
    """Detect and parse ``data`` as ``parse_report`` does for an uploaded file."""
    return parse_report(io.BytesIO(data), name=name)


def parse_as(format_id: str, data: bytes, *, name: str = "report") -> tuple[ReportInfo, list[ParsedCase]]:
    """Parse ``data`` with one parser directly, skipping detection."""
    info = ReportInfo(format=format_id)
    cases = list(get_parser(format_id).parse(io.BytesIO(data), name=name, info=info))
    return info, cases


def parse_fixture(file_name: str) -> tuple[ReportInfo, list[ParsedCase]]:
    with (FIXTURES / file_name).open("rb") as stream:
        return parse_report(stream, name=file_name)


def by_name(cases: list[ParsedCase]) -> dict[str, ParsedCase]:
    return {case.name: case for case in cases}


def statuses(cases: list[ParsedCase]) -> list[str]:
    return [case.status for case in cases]
