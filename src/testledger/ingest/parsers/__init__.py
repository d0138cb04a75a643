"""The report parsers by format id, and ``parse_report`` which detects the format and parses."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import IO

from testledger.ingest.detect import HEAD_SIZE, detect_format
from testledger.ingest.model import ParsedCase, Parser, ReportInfo, ReportParseError
from testledger.ingest.parsers.stream import peek

#: Each format id (as :func:`detect_format` returns them) and the module and class of its parser. A
#: parser's module is imported when its format is first parsed: ingesting JUnit does not import the
#: other 18 (~25 ms of every `testledger ingest`, issue 9).
_WHERE: dict[str, tuple[str, str]] = {
    "junit": ("junit", "JUnitParser"),
    "nunit3": ("nunit", "NUnit3Parser"),
    "nunit2": ("nunit", "NUnit2Parser"),
    "xunit2": ("xunit2", "XUnit2Parser"),
    "trx": ("trx", "TrxParser"),
    "ctrf": ("ctrf", "CtrfParser"),
    "tap": ("tap", "TapParser"),
    "gotest": ("gotest", "GoTestParser"),
    "cucumber": ("cucumber", "CucumberParser"),
    "mocha": ("js_reporters", "MochaParser"),
    "jest": ("js_reporters", "JestParser"),
    "rspec": ("rspec", "RSpecParser"),
    "dart": ("dart", "DartParser"),
    "ctest": ("native_xml", "CTestParser"),
    "boost": ("native_xml", "BoostTestParser"),
    "cppunit": ("native_xml", "CppUnitParser"),
    "qttest": ("native_xml", "QtTestParser"),
    "check": ("native_xml", "CheckParser"),
    "cunit": ("native_xml", "CUnitParser"),
}


class _Parsers(Mapping[str, Parser]):
    """Every built-in parser by format id, each built on first use."""

    def __init__(self) -> None:
        self._built: dict[str, Parser] = {}

    def __getitem__(self, format_id: str) -> Parser:
        parser = self._built.get(format_id)
        if parser is None:
            module, name = _WHERE[format_id]
            parser = getattr(importlib.import_module(f"{__name__}.{module}"), name)()
            self._built[format_id] = parser
        return parser

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)


#: Every built-in parser by format id (the ids :func:`detect_format` returns).
PARSERS: Mapping[str, Parser] = _Parsers()


def get_parser(format: str) -> Parser:
    """The parser for a format id from :func:`testledger.ingest.detect.detect_format`."""
    try:
        return PARSERS[format]
    except KeyError:
        known = ", ".join(sorted(PARSERS))
        raise ReportParseError(f"unknown report format {format!r} (expected one of {known})") from None


def stream_report(stream: IO[bytes], *, name: str) -> tuple[ReportInfo, Iterator[ParsedCase]]:
    """Detect the format from the first 64 KiB and parse the report as a stream of cases.

    The head is replayed in front of the rest of the stream rather than seeking back, so
    non-seekable inputs (gzip, sockets) work. The report's `ReportInfo` fills in as its cases are read.
    """
    head, replay = peek(stream, HEAD_SIZE)
    info = ReportInfo(format=detect_format(head, name=name))
    return info, get_parser(info.format).parse(replay, name=name, info=info)


def parse_report(stream: IO[bytes], *, name: str) -> tuple[ReportInfo, list[ParsedCase]]:
    """`stream_report` read whole into memory: for tests and small reports (ingestion streams)."""
    info, cases = stream_report(stream, name=name)
    return info, list(cases)
