"""CTRF JSON parser (``results.tests[]``), with ``retryAttempts`` read as attempts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from testledger.ingest.model import MAX_DIALECT, Attempt, ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.json_document import ITEM, JsonWalk, as_dict, as_list, as_str, as_text, expect_shape
from testledger.ingest.parsers.junit_case import is_flaky
from testledger.ingest.parsers.values import number_to_ms

_TESTS = ("results", "tests")
_TOOL = ("results", "tool")
_STATUSES = {"passed": "passed", "failed": "failed", "skipped": "skipped", "pending": "skipped"}


def ctrf_status(raw: object) -> str:
    """CTRF's five statuses; "other" has no passed/failed meaning and is kept as an error."""
    return _STATUSES.get(str(raw), "error")


class CtrfParser:
    """Common Test Report Format documents from any CTRF reporter."""

    format = "ctrf"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name, info), name=name, what="CTRF JSON")

    def _cases(self, stream: IO[bytes], name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        walk = JsonWalk(stream, name=name, what="a CTRF report", wanted={(*_TESTS, ITEM), _TOOL})
        for path, value in walk:
            if path == _TOOL:
                info.dialect = (as_str(as_dict(value).get("name")) or "")[:MAX_DIALECT] or None
            else:
                yield _case(as_dict(value))
        expect_shape(walk.kinds.get(_TESTS) == "array", name=name, what="a CTRF report (no results.tests)")


def _case(test: dict[str, Any]) -> ParsedCase:
    raw_status = test.get("status")
    case = ParsedCase(
        name=as_str(test.get("name")) or "",
        status=ctrf_status(raw_status),
        suite=_suite(test.get("suite")),
        duration_ms=number_to_ms(test.get("duration")),
        message=as_text(test.get("message")),
        stack_trace=as_text(test.get("trace")),
        stdout=as_text(test.get("stdout")),
        stderr=as_text(test.get("stderr")),
        file=as_str(test.get("filePath")),
    )
    line = test.get("line")
    if isinstance(line, int) and not isinstance(line, bool):
        case.line = line
    if raw_status not in _STATUSES or raw_status == "pending":
        case.properties = {"original_status": as_str(raw_status) or str(raw_status)}
    case.attachments = [
        path for path in (as_str(as_dict(item).get("path")) for item in as_list(test.get("attachments"))) if path
    ]
    case.attempts = _attempts(test, case)
    case.flaky = test.get("flaky") is True or is_flaky(case.attempts)
    return case


def _suite(value: object) -> str:
    """CTRF 1.0 writes the suite as a string; later reporters as the list of enclosing suites."""
    if isinstance(value, list):
        return " > ".join(part for part in (as_str(item) for item in value) if part)
    return as_str(value) or ""


def _attempts(test: dict[str, Any], case: ParsedCase) -> list[Attempt]:
    tries = [as_dict(item) for item in as_list(test.get("retryAttempts"))]
    if not tries:
        return []
    attempts = [
        Attempt(
            status=ctrf_status(item.get("status")),
            duration_ms=number_to_ms(item.get("duration")),
            message=as_text(item.get("message")),
            stack_trace=as_text(item.get("trace")),
            stdout=as_text(item.get("stdout")),
            stderr=as_text(item.get("stderr")),
        )
        for item in tries
    ]
    retries = test.get("retries")
    # Reporters differ: some list every try (the last being the reported outcome), others
    # only the earlier ones. Add the reported outcome when the list does not end with it.
    complete = attempts[-1].status == case.status and (not isinstance(retries, int) or len(attempts) >= retries + 1)
    if not complete:
        attempts.append(
            Attempt(
                status=case.status,
                duration_ms=case.duration_ms,
                message=case.message,
                stack_trace=case.stack_trace,
                stdout=case.stdout,
                stderr=case.stderr,
            )
        )
    return attempts
