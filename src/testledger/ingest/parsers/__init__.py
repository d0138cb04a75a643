"""The report parsers by format id, and ``parse_report`` which detects the format and parses."""

from __future__ import annotations

from typing import IO

from testledger.ingest.detect import HEAD_SIZE, detect_format
from testledger.ingest.model import ParsedCase, Parser, ReportInfo, ReportParseError
from testledger.ingest.parsers.ctrf import CtrfParser
from testledger.ingest.parsers.cucumber import CucumberParser
from testledger.ingest.parsers.dart import DartParser
from testledger.ingest.parsers.gotest import GoTestParser
from testledger.ingest.parsers.js_reporters import JestParser, MochaParser
from testledger.ingest.parsers.junit import JUnitParser
from testledger.ingest.parsers.native_xml import (
    BoostTestParser,
    CheckParser,
    CppUnitParser,
    CTestParser,
    CUnitParser,
    QtTestParser,
)
from testledger.ingest.parsers.nunit import NUnit2Parser, NUnit3Parser
from testledger.ingest.parsers.rspec import RSpecParser
from testledger.ingest.parsers.stream import peek
from testledger.ingest.parsers.tap import TapParser
from testledger.ingest.parsers.trx import TrxParser
from testledger.ingest.parsers.xunit2 import XUnit2Parser

_ALL: tuple[Parser, ...] = (
    JUnitParser(),
    NUnit3Parser(),
    NUnit2Parser(),
    XUnit2Parser(),
    TrxParser(),
    CtrfParser(),
    TapParser(),
    GoTestParser(),
    CucumberParser(),
    MochaParser(),
    JestParser(),
    RSpecParser(),
    DartParser(),
    CTestParser(),
    BoostTestParser(),
    CppUnitParser(),
    QtTestParser(),
    CheckParser(),
    CUnitParser(),
)

#: Every built-in parser by format id (the ids :func:`detect_format` returns).
PARSERS: dict[str, Parser] = {parser.format: parser for parser in _ALL}


def get_parser(format: str) -> Parser:
    """The parser for a format id from :func:`testledger.ingest.detect.detect_format`."""
    try:
        return PARSERS[format]
    except KeyError:
        known = ", ".join(sorted(PARSERS))
        raise ReportParseError(f"unknown report format {format!r} (expected one of {known})") from None


def parse_report(stream: IO[bytes], *, name: str) -> tuple[ReportInfo, list[ParsedCase]]:
    """Detect the format from the first 64 KiB and parse the whole report into memory.

    The head is replayed in front of the rest of the stream rather than seeking back, so
    non-seekable inputs (gzip, sockets) work. Meant for tests and small reports; ingestion
    streams ``get_parser(...).parse(...)`` instead.
    """
    head, replay = peek(stream, HEAD_SIZE)
    format_id = detect_format(head, name=name)
    info = ReportInfo(format=format_id)
    cases = list(get_parser(format_id).parse(replay, name=name, info=info))
    return info, cases
