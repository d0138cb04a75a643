"""The one shape every report parser produces: parsed cases, their attempts and report metadata."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

#: Every parser maps a case to one of `testledger.lifecycle.CASE_STATUSES`. Anything a format says
#: beyond those four (todo, inconclusive, not run, ...) is folded into one of them by the parser,
#: with the original word kept in ``properties["original_status"]`` when it carries information.

#: Widths of the store's columns for report text that is short by nature; longer values are cut
#: to fit (on every store alike: PostgreSQL would refuse them, SQLite keep them whole).
MAX_ERROR_TYPE = 255
MAX_DIALECT = 64


@dataclass(slots=True)
class Attempt:
    """One try of a test. A case that ran once has no attempts list; a rerun case has all of them."""

    status: str
    duration_ms: float | None = None
    message: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None
    stdout: str | None = None
    stderr: str | None = None


@dataclass(slots=True)
class ParsedCase:
    """One test case result as read from a report.

    ``suite``/``classname``/``name`` form the test's identity across runs (see
    :func:`testledger.ingest.identity.case_identity`). ``attempts`` is empty when the test
    ran once; when the report shows reruns it holds every attempt in order, the last one
    being the outcome that ``status`` reports. ``flaky`` is true when attempts disagree.
    """

    name: str
    status: str
    suite: str = ""
    classname: str = ""
    duration_ms: float | None = None
    message: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    properties: dict[str, str] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    flaky: bool = False
    file: str | None = None
    line: int | None = None
    attachments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SuiteInfo:
    """Suite-level data that belongs to no single case (output, properties, host, timestamp)."""

    name: str
    properties: dict[str, str] | None = None
    stdout: str | None = None
    stderr: str | None = None
    timestamp: str | None = None
    hostname: str | None = None


@dataclass(slots=True)
class ReportInfo:
    """What a parser learned about the report as a whole while streaming its cases."""

    format: str
    dialect: str | None = None
    suites: list[SuiteInfo] = field(default_factory=list)
    #: Outcomes the report states outside any case (a package build failure, a TAP bail out,
    #: a <failure> directly under a suite). Kept, not counted as tests.
    notes: list[str] = field(default_factory=list)


class ReportParseError(ValueError):
    """A report that cannot be read. The message names the file, the line and what was expected."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.reason = message
        where = file or "<report>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class Parser(Protocol):
    """A report format. ``parse`` streams cases; it fills ``info`` as it goes."""

    format: str

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]: ...
