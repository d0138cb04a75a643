"""Running some of a pipeline's cases: the chosen ones plus every case they need, in pipeline order."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from testledger.errors import Invalid
from testledger.pipelinefile import PipelineSpec


@dataclass(frozen=True, slots=True)
class Selection:
    """The cases a partial run executes (pipeline order), and those among them added only because a
    chosen case `needs` them (each with the first chosen case that needs it)."""

    keys: list[str]
    added: dict[str, str]


def with_needs(spec: PipelineSpec, chosen: Collection[str]) -> Selection:
    """`chosen` and, transitively, every case they need: a `needs` case must pass in the same run
    before the case that needs it starts, so it runs again too."""
    cases = {case.key: case for case in spec.cases}
    unknown = sorted(set(chosen) - set(cases))
    if unknown:
        raise Invalid(f"pipeline '{spec.key}' has no case '{unknown[0]}'")
    added: dict[str, str] = {}
    todo = [key for key in cases if key in chosen]
    seen = set(todo)
    while todo:
        key = todo.pop()
        for need in cases[key].needs:
            if need not in seen:
                seen.add(need)
                added[need] = added.get(key, key)  # name the chosen case at the root of the chain
                todo.append(need)
    return Selection(keys=[key for key in cases if key in seen], added={k: added[k] for k in cases if k in added})


def only_cases(spec: PipelineSpec, keys: Collection[str]) -> PipelineSpec:
    """The pipeline version with only the cases `keys` names (which hold every case they need);
    cases are numbered from 0 again, in pipeline order."""
    wanted = set(keys)
    cases = [case for case in spec.cases if case.key in wanted]
    missing = sorted(wanted - {case.key for case in cases})
    if missing:
        raise Invalid(f"pipeline '{spec.key}' has no case '{missing[0]}'")
    outside = [(case.key, need) for case in cases for need in case.needs if need not in wanted]
    if outside:
        raise Invalid(f"case '{outside[0][0]}' needs '{outside[0][1]}', which this run does not execute")
    return spec.model_copy(update={"cases": cases})
