"""Cucumber JSON parser: one case per scenario, background steps folded into the next scenario."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from testledger.ingest.model import ParsedCase, ReportInfo
from testledger.ingest.parsers.guard import guarded
from testledger.ingest.parsers.json_document import ITEM, JsonWalk, as_dict, as_list, as_str, expect_shape
from testledger.ingest.parsers.junit_case import first_line
from testledger.ingest.parsers.values import duration_ms

#: Step results that leave a scenario unfinished (it did not fail, but did not fully run).
_NOT_RUN = frozenset({"skipped", "pending", "undefined", "ambiguous"})


class CucumberParser:
    """cucumber-jvm / cucumber-js / cucumber-ruby ``--format json`` output."""

    format = "cucumber"

    def parse(self, stream: IO[bytes], *, name: str, info: ReportInfo) -> Iterator[ParsedCase]:
        return guarded(self._cases(stream, name), name=name, what="Cucumber JSON")

    def _cases(self, stream: IO[bytes], name: str) -> Iterator[ParsedCase]:
        # One feature at a time: its scenarios precede its name in cucumber-jvm's key order.
        walk = JsonWalk(stream, name=name, what="a Cucumber JSON report", wanted={(ITEM,)})
        for _, item in walk:
            feature = as_dict(item)
            feature_name = as_str(feature.get("name")) or ""
            uri = as_str(feature.get("uri")) or ""
            background: list[Any] = []
            for element in as_list(feature.get("elements")):
                scenario = as_dict(element)
                if scenario.get("type") == "background":
                    background = as_list(scenario.get("steps"))
                    continue
                yield _scenario(scenario, background, suite=feature_name, uri=uri)
                background = []
        expect_shape(walk.kinds.get(()) == "array", name=name, what="a Cucumber report (expected a list of features)")


def _scenario(scenario: dict[str, Any], background: list[Any], *, suite: str, uri: str) -> ParsedCase:
    steps = [as_dict(step) for step in (*background, *as_list(scenario.get("steps")))]
    hooks = [as_dict(hook) for hook in (*as_list(scenario.get("before")), *as_list(scenario.get("after")))]
    for step in steps:
        hooks.extend(as_dict(hook) for hook in (*as_list(step.get("before")), *as_list(step.get("after"))))
    case = ParsedCase(name=as_str(scenario.get("name")) or "", status="passed", suite=suite, file=uri or None)
    line = scenario.get("line")
    if isinstance(line, int) and not isinstance(line, bool):
        case.line = line
    failed = [item for item in (*steps, *hooks) if _result(item).get("status") == "failed"]
    if failed:
        case.status = "failed"
        error = as_str(_result(failed[0]).get("error_message"))
        case.stack_trace = error
        case.message = first_line(error) or f"step failed: {as_str(failed[0].get('name')) or ''}".strip()
    elif any(_result(step).get("status", "") in _NOT_RUN or "result" not in step for step in steps):
        case.status = "skipped"
    case.duration_ms = _duration_ms([*steps, *hooks])
    tags = [as_str(as_dict(tag).get("name")) for tag in as_list(scenario.get("tags"))]
    if any(tags):
        case.properties = {"tags": " ".join(tag for tag in tags if tag)}
    return case


def _result(item: dict[str, Any]) -> dict[str, Any]:
    return as_dict(item.get("result"))


def _duration_ms(items: list[dict[str, Any]]) -> float | None:
    """Cucumber writes step durations in nanoseconds."""
    total = 0.0
    seen = False
    for item in items:
        duration = _result(item).get("duration")
        if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
            total += duration
            seen = True
    return duration_ms(total / 1_000_000.0) if seen else None
