"""RSpec ``--format json`` parser: one case per ``examples[]`` entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.json_document import ITEM, JsonWalk, as_dict, as_str, as_text, expect_shape
from testledger.ingest.parsers.values import number_to_ms

_STATUSES = {"passed": "passed", "failed": "failed", "pending": "skipped"}


class RSpecParser:
    """``status`` passed/failed map directly; pending (and anything else) is skipped."""

    format = "rspec"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name, info), name=name, what="RSpec JSON")

    def _cases(self, stream: IO[bytes], name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        walk = JsonWalk(stream, name=name, what="an RSpec JSON report", wanted={("examples", ITEM), ("summary",)})
        for path, value in walk:
            if path == ("summary",):
                errors_outside = as_dict(value).get("errors_outside_of_examples_count")
                if isinstance(errors_outside, int) and errors_outside > 0:
                    info.notes.append(f"{errors_outside} error(s) outside of examples (a spec file failed to load)")
            else:
                yield _case(as_dict(value))
        expect_shape(walk.kinds.get(("examples",)) == "array", name=name, what="an RSpec report")


def _case(example: dict[str, Any]) -> ParsedCase:
    raw = as_str(example.get("status")) or ""
    description = as_str(example.get("description")) or ""
    full = as_str(example.get("full_description")) or description
    case = ParsedCase(
        name=description,
        status=_STATUSES.get(raw, "skipped"),
        suite=as_str(example.get("file_path")) or "",
        classname=full[: -len(description)].strip() if description and full.endswith(description) else full,
        duration_ms=number_to_ms(example.get("run_time"), scale=1000.0),
        file=as_str(example.get("file_path")),
    )
    line = example.get("line_number")
    if isinstance(line, int) and not isinstance(line, bool):
        case.line = line
    if case.status == "skipped":
        case.message = as_str(example.get("pending_message"))
    exception = as_dict(example.get("exception"))
    if exception:
        case.error_type = as_str(exception.get("class"))
        case.message = as_str(exception.get("message"))
        case.stack_trace = as_text(exception.get("backtrace"))
    return case
