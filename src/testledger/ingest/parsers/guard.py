"""Turns any failure while reading an untrusted report into a ReportParseError naming the file."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from testledger.ingest.model import MAX_ERROR_TYPE, ParsedCase, ReportParseError
from testledger.ingest.parsers.xml_safety import syntax_error


def guarded(cases: Iterator[ParsedCase], *, name: str, what: str) -> Iterator[ParsedCase]:
    """Yield ``cases``; whatever a malformed input makes the parser raise leaves as ReportParseError.

    An error type longer than its column (``MAX_ERROR_TYPE``) is cut to fit here, for every parser.

    Parsers are written defensively, but a report is hostile input: a shape no parser foresaw
    must still reach the caller as a clear, catchable rejection, never as a stray TypeError.
    """
    try:
        for case in cases:
            if case.error_type is not None and len(case.error_type) > MAX_ERROR_TYPE:
                case.error_type = case.error_type[:MAX_ERROR_TYPE]
            yield case
    except ReportParseError as exc:
        if exc.file is None:  # raised by shared value parsing, which does not know the file
            raise ReportParseError(exc.reason, file=name, line=exc.line) from None
        raise
    except etree.XMLSyntaxError as exc:
        raise syntax_error(exc, name=name) from None
    except RecursionError as exc:
        raise ReportParseError(f"{what} is nested too deeply", file=name) from exc
    except Exception as exc:  # see the docstring: any other failure here is bad input
        raise ReportParseError(f"unreadable {what} ({type(exc).__name__}: {exc})", file=name) from exc
