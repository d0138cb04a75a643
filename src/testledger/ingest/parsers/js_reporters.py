"""mocha ``--reporter json`` and jest ``--json`` (formatted or raw AggregatedResult) parsers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.json_document import ITEM, JsonWalk, as_dict, as_list, as_str, as_text, expect_shape
from testledger.ingest.parsers.junit_case import first_line
from testledger.ingest.parsers.values import number_to_ms

_JEST_STATUSES = {"passed": "passed", "failed": "failed"}


class MochaParser:
    """mocha JSON: ``tests[]``; a non-empty ``err`` fails a test, listing in ``pending[]`` skips it."""

    format = "mocha"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="mocha JSON")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        pending: set[tuple[str | None, str | None]] = set()
        walk = JsonWalk(stream, name=name, what="a mocha JSON report", wanted={("tests", ITEM), ("pending", ITEM)})
        for path, value in walk:
            test = as_dict(value)
            if path[0] == "pending":
                pending.add(_mocha_key(test))
                continue
            # mocha writes `pending[]` after `tests[]`, and a streamed test is decided as it is read:
            # a test that never ran has no duration (mocha sets one on every test that ran).
            never_ran = "duration" not in test and not as_dict(test.get("err"))
            yield _mocha_case(test, skipped=never_ran or _mocha_key(test) in pending)
        expect_shape(walk.kinds.get(("tests",)) == "array", name=name, what="a mocha report (no tests[])")


def _mocha_key(test: dict[str, Any]) -> tuple[str | None, str | None]:
    return as_str(test.get("file")), as_str(test.get("fullTitle"))


def _mocha_case(test: dict[str, Any], *, skipped: bool) -> ParsedCase:
    title = as_str(test.get("title")) or ""
    full_title = as_str(test.get("fullTitle")) or title
    err = as_dict(test.get("err"))
    case = ParsedCase(
        name=title,
        status="skipped" if skipped else "passed",
        suite=as_str(test.get("file")) or "",
        classname=full_title[: -len(title)].strip() if title and full_title.endswith(title) else "",
        duration_ms=number_to_ms(test.get("duration")),
    )
    if err and not skipped:
        case.status = "failed"
        case.message = as_text(err.get("message"))
        case.stack_trace = as_text(err.get("stack"))
        case.error_type = as_str(err.get("name")) or as_str(err.get("code"))
        if case.message is None:
            case.message = first_line(case.stack_trace)
    return case


class JestParser:
    """jest JSON: ``testResults[].assertionResults[]`` (``--json``) or ``testResults[].testResults[]``."""

    format = "jest"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name, info), name=name, what="jest JSON")

    def _cases(self, stream: IO[bytes], name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        walk = JsonWalk(stream, name=name, what="a jest JSON report", wanted={("testResults", ITEM)})
        for _, item in walk:
            file_result = as_dict(item)
            path = as_str(file_result.get("name")) or as_str(file_result.get("testFilePath")) or ""
            if "assertionResults" in file_result:
                info.dialect = info.dialect or "jest-json"
                assertions = as_list(file_result.get("assertionResults"))
            else:
                info.dialect = info.dialect or "jest-AggregatedResult"
                assertions = as_list(file_result.get("testResults"))
            if not assertions:
                _note_file_failure(file_result, path, info)
            for assertion in assertions:
                yield _jest_case(as_dict(assertion), path)
        expect_shape(walk.kinds.get(("testResults",)) == "array", name=name, what="a jest report")


def _note_file_failure(file_result: dict[str, Any], path: str, info: ReportInfo) -> None:
    """A test file that failed to run has no assertions; it is a note, not a test."""
    message = as_text(file_result.get("message")) or as_text(file_result.get("failureMessage"))
    exec_error = as_dict(file_result.get("testExecError"))
    if file_result.get("status") == "failed" or exec_error or message:
        detail = first_line(message) or as_str(exec_error.get("message")) or "failed to run"
        info.notes.append(f"test file {path} did not run: {detail}")


def _jest_case(assertion: dict[str, Any], path: str) -> ParsedCase:
    raw = as_str(assertion.get("status")) or ""
    ancestors = [title for title in (as_str(t) for t in as_list(assertion.get("ancestorTitles"))) if title]
    case = ParsedCase(
        name=as_str(assertion.get("title")) or as_str(assertion.get("fullName")) or "",
        status=_JEST_STATUSES.get(raw, "skipped"),
        suite=path,
        classname=" \u203a ".join(ancestors),
        duration_ms=number_to_ms(assertion.get("duration")),
    )
    if raw not in _JEST_STATUSES and raw != "skipped":
        case.properties = {"original_status": raw}
    failures = [text for text in (as_str(m) for m in as_list(assertion.get("failureMessages"))) if text]
    if failures:
        case.stack_trace = "\n\n".join(failures)
        case.message = first_line(failures[0])
    location = as_dict(assertion.get("location"))
    line = location.get("line")
    if isinstance(line, int) and not isinstance(line, bool):
        case.file, case.line = path or None, line
    return case
