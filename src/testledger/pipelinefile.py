"""Pipeline files: the document's models, and its validation in one pass with every problem at its line:column
(the YAML itself is read, with its marks, by `pipelineyaml`)."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from testledger.execute.parameters import ENV_PREFIX, PARAM_REF, env_name, shell_text

if TYPE_CHECKING:  # the YAML reader (and PyYAML) is imported by `parse_pipeline`, not by the models' users
    from pathlib import Path

    from testledger.pipelineyaml import Marks

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
#: The longest time limit a pipeline, a case or a request may have.
MAX_DURATION_S = 7 * 86400.0
MASK = "***"
KINDS = ("command", "pytest", "http")


def parse_duration(value: Any) -> float:
    """`500ms`, `30s`, `10m`, `1h` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 10m, 1h or 500ms, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like 30s, 10m, 1h or 500ms, got {value!r}")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive and finite, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration must be at most 7 days, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _valid_environment(env: dict[str, str]) -> dict[str, str]:
    """Variables a process can be given, none of them a parameter's own `TL_PARAM_*`."""
    for name, value in env.items():  # what no process can be given: refused here, not at every run
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"{name!r}: an environment variable's name cannot be empty or hold '=' or a NUL")
        if "\0" in value:
            raise ValueError(f"'{name}': an environment variable's value cannot hold a NUL character")
    taken = sorted(name for name in env if name.upper().startswith(ENV_PREFIX))
    if taken:
        raise ValueError(f"'{taken[0]}': variables named {ENV_PREFIX}* carry the parameters; choose another name")
    return env


#: Environment variables a pipeline sets; the `TL_PARAM_*` names are the parameters' own.
Environment = Annotated[dict[str, str], AfterValidator(_valid_environment)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Parameter(_Strict):
    """A parameter: a value written in the file, or read at run time from `from_env` or `from_file`.

    `secret: true` masks the value as `***` in every log, message and output; a secret's value is
    never written in the file (the file is stored), only where to read it.
    """

    value: str | int | float | bool | None = None
    secret: bool = False
    from_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
                                 description="Environment variable the value is read from when a run starts.")
    from_file: str | None = Field(default=None, min_length=1, max_length=4096,
                                  description="File the value is read from when a run starts (relative: to the "
                                  "run's working directory); one trailing newline is dropped.")

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        return data if isinstance(data, dict) else {"value": data}

    @model_validator(mode="after")
    def _one_source(self) -> Parameter:
        sources = [n for n in ("value", "from_env", "from_file") if getattr(self, n) is not None]
        if len(sources) > 1:
            raise ValueError(f"give one of value, from_env or from_file (found {' and '.join(sources)})")
        if self.secret and self.value is not None:
            raise ValueError(
                "a secret's value must not be written in the pipeline file, which is stored: read it at run "
                "time with `from_env: VARIABLE` or `from_file: PATH`, or pass it with --param"
            )
        return self

    def shown(self) -> Any:
        """The parameter as `pipelines show` and a run's parameters show it."""
        if self.secret:
            return MASK
        if self.value is None and (self.from_env or self.from_file):
            return f"(from_env {self.from_env})" if self.from_env else f"(from_file {self.from_file})"
        return self.value


class CommandSpec(_Strict):
    run: str = Field(min_length=1, description="Shell command, run with /bin/sh -c.")
    workdir: str | None = None
    env: Environment = Field(default_factory=dict)
    exit_code: int = Field(default=0, ge=0, le=255, description="The exit code that means the case passed.")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        return {"run": data} if isinstance(data, str) else data


class PytestSpec(_Strict):
    target: str = Field(min_length=1, description="What pytest collects: a path, a node id, `-k` is in args.")
    args: list[str] = Field(default_factory=list)
    python: str | None = Field(
        default=None,
        description="Interpreter that has pytest and the project installed, e.g. .venv/bin/python "
        "(relative to the case's working directory; default: the one testledger runs under).",
    )
    workdir: str | None = None
    env: Environment = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        return {"target": data} if isinstance(data, str) else data


class HttpExpect(_Strict):
    status: int = Field(default=200, ge=100, le=599)
    json_: dict[str, Any] = Field(default_factory=dict, alias="json")
    max_ms: float | None = Field(default=None, gt=0, le=MAX_DURATION_S * 1000)
    contains: str | None = None


class HttpSpec(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | dict[str, Any] | list[Any] | None = None
    expect: HttpExpect = Field(default_factory=HttpExpect)

    @model_validator(mode="before")
    @classmethod
    def _upper_method(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            data = {**data, "method": data["method"].upper()}
        return data


class CaseSpec(_Strict):
    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    name: str | None = None
    description: str | None = None
    timeout: Duration | None = None
    retries: int | None = Field(default=None, ge=0, le=10)
    needs: list[str] = Field(default_factory=list, description="Cases that must pass before this one starts.")
    command: CommandSpec | None = None
    pytest: PytestSpec | None = None
    http: HttpSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CaseSpec:
        found = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(found) != 1:
            what = "none" if not found else " and ".join(found)
            raise ValueError(f"exactly one of command, pytest or http is required (found {what})")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)


#: Key of a stored version's spec JSON naming the directory its file was applied from (relative
#: paths in the pipeline resolve against it, wherever `testledger run KEY` is typed).
SOURCE_DIRECTORY = "source_directory"


class PipelineSpec(_Strict):
    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    name: str | None = None
    description: str | None = None
    workspace: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9]{1,15}$")
    environment: str | None = None
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    env: Environment = Field(default_factory=dict, description="Environment variables for every case.")
    timeout: Duration | None = Field(default=None, description="Time limit of the whole run.")
    case_timeout: Duration | None = Field(default=None, description="Default time limit of each case.")
    parallelism: int = Field(default=1, ge=1, le=256)
    retries: int = Field(default=0, ge=0, le=10)
    fail_fast: bool = False
    cases: list[CaseSpec] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _parameter_names(self) -> PipelineSpec:
        seen: dict[str, str] = {}
        for name in self.parameters:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,99}", name):
                raise ValueError(f"parameter name '{name}' must be letters, digits, '_' or '-', starting with a letter")
            other = seen.setdefault(env_name(name), name)
            if other != name:
                raise ValueError(f"parameters '{other}' and '{name}' would both be ${env_name(name)}; rename one")
        return self

    def masked_parameters(self) -> dict[str, Any]:
        return {name: p.shown() for name, p in self.parameters.items()}

    def stored(self, directory: Path | None = None) -> dict[str, Any]:
        """The normalised document kept as a pipeline version, with the directory it was applied from
        when given; equal documents from the same directory give equal dicts."""
        stored = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if directory is not None:
            stored[SOURCE_DIRECTORY] = str(directory)
        return stored

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> PipelineSpec:
        """A stored version; one stored before secrets were refused in files loses its secret values
        (they must now come from the environment, a file or --param)."""
        # The directory the file was applied from is kept beside the document, not in it.
        data = {k: v for k, v in data.items() if k != SOURCE_DIRECTORY}
        params = data.get("parameters") or {}
        if any(isinstance(p, dict) and p.get("secret") and p.get("value") is not None for p in params.values()):
            data = {**data, "parameters": {
                name: {k: v for k, v in p.items() if k != "value"} if isinstance(p, dict) and p.get("secret") else p
                for name, p in params.items()
            }}
        return cls.model_validate(data)


# -- problems ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One error in a pipeline file, at a 1-based line and column."""

    line: int
    column: int
    message: str

    def render(self, filename: str) -> str:
        return f"{filename}:{self.line}:{self.column}: {self.message}"


class PipelineFileError(ValueError):
    """A pipeline file with one or more problems; `str()` lists every one as `file:line:col: message`."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        super().__init__("\n".join(p.render(filename) for p in self.problems))


Path_ = tuple[str | int, ...]


# -- validation ------------------------------------------------------------------------------------

_FIELDS: dict[str, tuple[str, ...]] = {
    "PipelineSpec": tuple(PipelineSpec.model_fields),
    "CaseSpec": tuple(CaseSpec.model_fields),
    "CommandSpec": tuple(CommandSpec.model_fields),
    "PytestSpec": tuple(PytestSpec.model_fields),
    "HttpSpec": tuple(HttpSpec.model_fields),
    "HttpExpect": ("status", "json", "max_ms", "contains"),
    "Parameter": tuple(Parameter.model_fields),
}


def _allowed_keys(loc: Path_) -> tuple[str, ...]:
    names = [p for p in loc if isinstance(p, str)]
    if len(names) == 1:
        return _FIELDS["PipelineSpec"]
    parent = names[-2]
    by_parent = {
        "cases": "CaseSpec", "command": "CommandSpec", "pytest": "PytestSpec", "http": "HttpSpec",
        "expect": "HttpExpect", "parameters": "Parameter",
    }
    if parent not in by_parent and len(names) >= 3 and names[-3] == "parameters":
        return _FIELDS["Parameter"]
    return _FIELDS[by_parent.get(parent, "PipelineSpec")]


def _unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, allowed, n=3, cutoff=0.5)
    ordered = [*close, *(a for a in allowed if a not in close)]
    return f"unknown key '{key}' (expected one of {', '.join(ordered)})"


def _case_prefix(data: dict[str, Any], loc: Path_) -> str:
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        cases = data.get("cases")
        if isinstance(cases, list) and loc[1] < len(cases) and isinstance(cases[loc[1]], dict):
            key = cases[loc[1]].get("key")
            return f"case '{key}': " if key else f"case {loc[1] + 1}: "
    return ""


def _problem(data: dict[str, Any], marks: Marks, error: Any) -> Problem:
    loc: Path_ = tuple(error["loc"])
    prefix = _case_prefix(data, loc)
    field = ".".join(str(p) for p in loc[2:] if isinstance(p, str)) if prefix else ".".join(map(str, loc))
    kind = error["type"]
    if kind == "extra_forbidden":
        return Problem(*marks.at(loc, key=True), prefix + _unknown_key(str(loc[-1]), _allowed_keys(loc)))
    if kind == "missing":
        return Problem(*marks.at(loc[:-1]), f"{prefix}missing required key '{loc[-1]}'")
    message = str(error["msg"]).removeprefix("Value error, ")
    where = f"'{field}': " if field else ""
    return Problem(*marks.at(loc), f"{prefix}{where}{message}")


def _check_references(data: dict[str, Any], marks: Marks) -> list[Problem]:
    """Every `${{ params.x }}` must name a declared parameter; case keys must be unique.

    Works on the raw document, so these problems are reported beside the shape errors.
    """
    problems: list[Problem] = []
    params = data.get("parameters")
    known = set(params) if isinstance(params, dict) else set()

    def walk(value: Any, path: Path_) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))
        elif isinstance(value, str):
            for name in PARAM_REF.findall(value):
                if name not in known:
                    expected = ", ".join(sorted(known)) or "none declared"
                    problems.append(Problem(
                        *marks.at(path), f"{_case_prefix(data, path)}unknown parameter '{name}' "
                        f"(expected one of {expected})",
                    ))

    walk(data.get("cases"), ("cases",))
    walk(data.get("env"), ("env",))
    seen: set[str] = set()
    cases = data.get("cases")
    for i, case in enumerate(cases if isinstance(cases, list) else []):
        key = case.get("key") if isinstance(case, dict) else None
        if isinstance(key, str) and key in seen:
            problems.append(Problem(*marks.at(("cases", i, "key")), f"duplicate case key '{key}'"))
        needs = case.get("needs") if isinstance(case, dict) else None
        for j, need in enumerate(needs if isinstance(needs, list) else []):
            if need not in seen:
                problems.append(Problem(
                    *marks.at(("cases", i, "needs", j)), f"{_case_prefix(data, ('cases', i))}needs '{need}', "
                    "which is not a case before this one",
                ))
        seen.add(str(key))
    return problems


def _check_environment(data: dict[str, Any], marks: Marks, environments: list[str] | None) -> list[Problem]:
    from testledger.lifecycle import ENVIRONMENT_ALIASES

    name = data.get("environment")
    if environments is None or not isinstance(name, str):
        return []
    if ENVIRONMENT_ALIASES.get(name.lower(), name.lower()) in environments:
        return []
    message = f"unknown environment '{name}' (expected one of {', '.join(environments)})"
    return [Problem(*marks.at(("environment",)), message)]


def _check_parameter_uses(spec: PipelineSpec, marks: Marks) -> list[Problem]:
    """Parameters reach a shell only through `shell_text`, and a secret never reaches a command line
    (pytest's arguments show in `ps`; a command line holds only `$TL_PARAM_*` references)."""
    problems: list[Problem] = []
    secrets = {name for name, p in spec.parameters.items() if p.secret}
    for i, case in enumerate(spec.cases):
        if case.command is not None:
            try:
                shell_text(case.command.run)
            except ValueError as exc:
                problems.append(Problem(*marks.at(("cases", i, "command", "run")), f"case '{case.key}': {exc}"))
        if case.pytest is not None:
            argv = [case.pytest.target, case.pytest.python or "", *case.pytest.args]
            for name in sorted({m for arg in argv for m in PARAM_REF.findall(arg)} & secrets):
                problems.append(Problem(
                    *marks.at(("cases", i, "pytest")), f"case '{case.key}': secret parameter '{name}' cannot be "
                    f"on pytest's command line, where `ps` shows it; read ${env_name(name)} in the test instead",
                ))
    return problems


@dataclass(frozen=True, slots=True)
class PipelineFile:
    """A validated pipeline document, its source as written (it holds no secret value) and where it came from."""

    spec: PipelineSpec
    source: str
    filename: str


def parse_pipeline(text: str, *, filename: str = "<pipeline>", environments: list[str] | None = None) -> PipelineFile:
    """Validate a pipeline document; raise `PipelineFileError` listing every problem with its line:column."""
    from testledger.pipelineyaml import read_document

    data, marks = read_document(text, filename=filename)
    problems = _check_references(data, marks) + _check_environment(data, marks, environments)
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(data, marks, e) for e in exc.errors()]
    else:
        problems += _check_parameter_uses(spec, marks)
    if problems:
        raise PipelineFileError(filename, problems)
    # Stored as written: secrets are refused in the file, so there is nothing to cut out of it.
    return PipelineFile(spec=spec, source=text, filename=filename)


def interpolate(value: Any, params: dict[str, str]) -> Any:
    """Replace `${{ params.x }}` in every string of a (nested) value."""
    if isinstance(value, str):
        return PARAM_REF.sub(lambda m: params.get(m[1], m[0]), value) if "${{" in value else value
    if isinstance(value, dict):
        return {k: interpolate(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, params) for v in value]
    return value
