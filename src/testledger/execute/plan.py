"""What a run executes: its cases resolved from a stored pipeline version, parameters read and filled in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testledger.caseid import case_id, defined_identity
from testledger.db.rows import NewCase
from testledger.errors import Invalid
from testledger.execute.masking import MASK, Masker
from testledger.execute.parameters import parameter_environment, shell_text
from testledger.pipelinefile import Parameter, PipelineSpec, interpolate


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


#: The largest secret or value file read for a parameter.
MAX_PARAMETER_FILE_BYTES = 64 * 1024
#: The most cases a run starts at once (`--parallel`), as in a pipeline file.
MAX_PARALLELISM = 256


def parameter_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_source(name: str, parameter: Parameter, workdir: Path | None) -> str | None:
    """The value a parameter names by `from_env` / `from_file`, read now; None when it has no source
    or (`workdir` None) when files are not to be read."""
    if parameter.from_env:
        value = os.environ.get(parameter.from_env)
        if value is None:
            raise Invalid(f"parameter '{name}' is read from the environment variable {parameter.from_env}, "
                          f"which is not set (export it, or pass --param {name}=VALUE)")
        return value
    if parameter.from_file and workdir is not None:
        path = workdir / parameter.from_file
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_PARAMETER_FILE_BYTES + 1)
            if len(data) > MAX_PARAMETER_FILE_BYTES:
                raise Invalid(f"parameter '{name}': {path} is larger than {MAX_PARAMETER_FILE_BYTES // 1024} KiB")
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Invalid(f"parameter '{name}' is read from the file {path}, which cannot be read "
                          f"({exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc}); "
                          f"create it, or pass --param {name}=VALUE") from None
        return text.removesuffix("\n").removesuffix("\r")
    return None


def resolve_parameters(
    spec: PipelineSpec, overrides: dict[str, str], *, workdir: Path | None
) -> tuple[dict[str, str], list[str]]:
    """Parameter values as text (overrides win, then `from_env` / `from_file`, then `value`) and the
    secret values among them. With `workdir` None, `from_file` is not read (its value is empty)."""
    unknown = sorted(set(overrides) - set(spec.parameters))
    if unknown:
        expected = ", ".join(sorted(spec.parameters)) or "none declared"
        raise Invalid(f"unknown parameter '{unknown[0]}' for pipeline '{spec.key}' (expected one of {expected})")
    values: dict[str, str] = {}
    for name, parameter in spec.parameters.items():
        if name in overrides:
            values[name] = overrides[name]
            continue
        source = _read_source(name, parameter, workdir)
        if source is None and parameter.secret and not parameter.from_file:
            raise Invalid(f"secret parameter '{name}' has no value: pass --param {name}=VALUE, or read it "
                          "with `from_env:` or `from_file:` in the pipeline file")
        values[name] = parameter_text(parameter.value) if source is None else source
    for name, value in values.items():  # each reaches the cases as an environment variable, which cannot hold one
        if "\0" in value:
            raise Invalid(f"parameter '{name}' holds a NUL character, which no process can be given; remove it")
    secrets = [values[name] for name, p in spec.parameters.items() if p.secret and values[name]]
    return values, secrets


def masked_parameters(spec: PipelineSpec, overrides: dict[str, str]) -> dict[str, Any]:
    """The run's parameters as stored and shown: secret values are `***`.

    Checks first that every parameter has a value (environment variables set, secrets given), so
    that a run that could not start is never created; files are read when the run starts.
    """
    values, _secrets = resolve_parameters(spec, overrides, workdir=None)

    def shown(name: str, parameter: Parameter) -> Any:
        if parameter.secret:
            return MASK
        if name in overrides or parameter.from_env:
            return values[name]
        return parameter.shown()

    return {name: shown(name, parameter) for name, parameter in spec.parameters.items()}


def _case_spec(kind: str, settings: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """A case kind's settings with parameters filled in: as data where nothing parses them (argv,
    URLs, headers, environment), and as `$TL_PARAM_*` references in a command's shell text."""
    if kind != "command":
        return dict(interpolate(settings, values))
    run = settings["run"]
    return {**interpolate({k: v for k, v in settings.items() if k != "run"}, values), "run": shell_text(run)}


def build_plan(
    spec: PipelineSpec,
    *,
    run_key: str,
    workspace_id: int,
    overrides: dict[str, str],
    workdir: Path,
    parallelism: int | None = None,
    resolve: bool = True,
) -> RunPlan:
    """The run's cases with parameters filled in. `resolve=False` plans without reading parameter
    sources (values may be missing), for bookkeeping such as repairing a stuck run."""
    if parallelism is not None and not 1 <= parallelism <= MAX_PARALLELISM:
        raise Invalid(f"--parallel must be between 1 and {MAX_PARALLELISM}, got {parallelism}")
    if resolve:
        values, secrets = resolve_parameters(spec, overrides, workdir=workdir)
    else:
        values, secrets = {name: parameter_text(p.value) for name, p in spec.parameters.items()}, []
    cases = []
    positions = {case.key: index for index, case in enumerate(spec.cases)}
    for index, case in enumerate(spec.cases):
        identity = defined_identity(spec.key, case.key)
        kind = case.kind
        kind_spec = getattr(case, kind).model_dump(mode="json", by_alias=True)
        cases.append(CasePlan(
            index=index, key=case.key, name=case.name or case.key, kind=kind,
            spec=_case_spec(kind, kind_spec, values),
            timeout_s=case.timeout or spec.case_timeout,
            retries=spec.retries if case.retries is None else case.retries,
            case=NewCase(id=case_id(workspace_id, identity), identity=identity, kind=kind,
                         name=case.name or case.key, key=case.key),
            needs=tuple(positions[need] for need in case.needs),
        ))
    env = {**interpolate(dict(spec.env), values), **parameter_environment(values)}
    return RunPlan(
        run_key=run_key, workspace_id=workspace_id, pipeline_key=spec.key, cases=cases,
        parallelism=parallelism or spec.parallelism, timeout_s=spec.timeout, fail_fast=spec.fail_fast, workdir=workdir,
        env=env, masker=Masker(secrets),
    )
