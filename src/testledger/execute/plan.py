"""What a run executes: its cases resolved from a stored pipeline version, parameters interpolated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testledger.caseid import case_id, defined_identity
from testledger.db.bulk import NewCase
from testledger.errors import Invalid
from testledger.execute.masking import Masker
from testledger.pipelinefile import PipelineSpec, interpolate


@dataclass(frozen=True, slots=True)
class CasePlan:
    """One pipeline case ready to run; `spec` is its kind's settings with parameters filled in."""

    index: int
    key: str
    name: str
    kind: str
    spec: dict[str, Any]
    timeout_s: float | None
    retries: int
    case: NewCase
    #: Indexes of the cases that must pass before this one starts.
    needs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RunPlan:
    run_key: str
    workspace_id: int
    pipeline_key: str
    cases: list[CasePlan]
    parallelism: int
    timeout_s: float | None
    fail_fast: bool
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    masker: Masker = field(default_factory=lambda: Masker(()))


def parameter_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve_parameters(spec: PipelineSpec, overrides: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Parameter values as text (overrides win) and the secret values among them."""
    unknown = sorted(set(overrides) - set(spec.parameters))
    if unknown:
        expected = ", ".join(sorted(spec.parameters)) or "none declared"
        raise Invalid(f"unknown parameter '{unknown[0]}' for pipeline '{spec.key}' (expected one of {expected})")
    values = {name: parameter_text(p.value) for name, p in spec.parameters.items()}
    values.update(overrides)
    secrets = [values[name] for name, p in spec.parameters.items() if p.secret and values[name]]
    return values, secrets


def masked_parameters(spec: PipelineSpec, overrides: dict[str, str]) -> dict[str, Any]:
    """The run's parameters as stored and shown: secret values are `***`."""
    values: dict[str, Any] = {name: p.value for name, p in spec.parameters.items()}
    values.update(overrides)
    return {name: "***" if spec.parameters[name].secret else value for name, value in values.items()}


def build_plan(
    spec: PipelineSpec,
    *,
    run_key: str,
    workspace_id: int,
    overrides: dict[str, str],
    workdir: Path,
    parallelism: int | None = None,
) -> RunPlan:
    values, secrets = resolve_parameters(spec, overrides)
    cases = []
    positions = {case.key: index for index, case in enumerate(spec.cases)}
    for index, case in enumerate(spec.cases):
        identity = defined_identity(spec.key, case.key)
        kind = case.kind
        kind_spec = getattr(case, kind).model_dump(mode="json", by_alias=True)
        cases.append(CasePlan(
            index=index, key=case.key, name=case.name or case.key, kind=kind,
            spec=interpolate(kind_spec, values),
            timeout_s=case.timeout or spec.case_timeout,
            retries=spec.retries if case.retries is None else case.retries,
            case=NewCase(id=case_id(workspace_id, identity), identity=identity, kind=kind,
                         name=case.name or case.key, key=case.key),
            needs=tuple(positions[need] for need in case.needs),
        ))
    if parallelism is not None and parallelism < 1:
        raise Invalid(f"--parallel must be at least 1, got {parallelism}")
    return RunPlan(
        run_key=run_key, workspace_id=workspace_id, pipeline_key=spec.key, cases=cases,
        parallelism=parallelism or spec.parallelism, timeout_s=spec.timeout, fail_fast=spec.fail_fast, workdir=workdir,
        env=interpolate(dict(spec.env), values), masker=Masker(secrets),
    )
