"""Pipeline files: YAML (or JSON) documents read with their line:column marks and validated in one pass."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
#: `${{ params.base_url }}`; the only interpolation a pipeline file knows.
PARAM_REF = re.compile(r"\$\{\{\s*params\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
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
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Strict):
    """A parameter's value; `secret: true` masks it as `***` in every log, message and output."""

    value: str | int | float | bool | None = None
    secret: bool = False

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        return data if isinstance(data, dict) else {"value": data}


class CommandSpec(_Strict):
    run: str = Field(min_length=1, description="Shell command, run with /bin/sh -c.")
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    exit_code: int = Field(default=0, description="The exit code that means the case passed.")

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
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        return {"target": data} if isinstance(data, str) else data


class HttpExpect(_Strict):
    status: int = 200
    json_: dict[str, Any] = Field(default_factory=dict, alias="json")
    max_ms: float | None = Field(default=None, gt=0)
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


class PipelineSpec(_Strict):
    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    name: str | None = None
    description: str | None = None
    workspace: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9]{1,15}$")
    environment: str | None = None
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables for every case.")
    timeout: Duration | None = Field(default=None, description="Time limit of the whole run.")
    case_timeout: Duration | None = Field(default=None, description="Default time limit of each case.")
    parallelism: int = Field(default=1, ge=1, le=256)
    retries: int = Field(default=0, ge=0, le=10)
    fail_fast: bool = False
    cases: list[CaseSpec] = Field(min_length=1)

    def secrets(self) -> list[str]:
        return [str(p.value) for p in self.parameters.values() if p.secret and p.value not in (None, "")]

    def masked_parameters(self) -> dict[str, Any]:
        return {name: MASK if p.secret else p.value for name, p in self.parameters.items()}

    def stored(self) -> dict[str, Any]:
        """The normalised document kept as a pipeline version; equal documents give equal dicts."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# -- reading with marks ---------------------------------------------------------------------------


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


class _Marks:
    """Where each value (and each mapping key) of the document sits in the source."""

    def __init__(self) -> None:
        self.values: dict[Path_, tuple[int, int]] = {}
        self.keys: dict[Path_, tuple[int, int]] = {}
        self.secret_spans: list[tuple[int, int]] = []

    def at(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, marks: _Marks, problems: list[Problem]) -> Any:
    marks.values[path] = _mark(node)
    if len(path) > 50:
        problems.append(Problem(*_mark(node), "document nests too deep"))
        return None
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        data: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in data:
                problems.append(Problem(*_mark(key_node), f"duplicate key '{key}'"))
            marks.keys[(*path, key)] = _mark(key_node)
            data[key] = _build(loader, value_node, (*path, key), marks, problems)
        return data
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), marks, problems) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _secret_spans(root: yaml.Node) -> list[tuple[int, int]]:
    """Source offsets of secret parameter values, so a stored copy of the source can hide them."""
    spans: list[tuple[int, int]] = []
    params = _child(root, "parameters")
    if not isinstance(params, yaml.MappingNode):
        return spans
    for _key, value in params.value:
        if not isinstance(value, yaml.MappingNode):
            continue
        secret, inner = _child(value, "secret"), _child(value, "value")
        if isinstance(secret, yaml.ScalarNode) and secret.value.lower() == "true" and inner is not None:
            spans.append((inner.start_mark.index, inner.end_mark.index))
    return spans


def _child(node: yaml.Node, name: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == name), None)


def read_document(text: str, *, filename: str) -> tuple[dict[str, Any], _Marks]:
    """The document as plain data with its marks; YAML syntax errors become one `PipelineFileError`."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        problems: list[Problem] = []
        marks = _Marks()
        data = _build(loader, root, (), marks, problems) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PipelineFileError(filename, [Problem(line, col, f"invalid YAML: {exc.problem or exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise PipelineFileError(filename, [Problem(1, 1, "a pipeline file is a mapping with key, name and cases")])
    if problems:
        raise PipelineFileError(filename, problems)
    marks.secret_spans = _secret_spans(root) if root is not None else []
    return data, marks


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


def _problem(data: dict[str, Any], marks: _Marks, error: Any) -> Problem:
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


def _check_references(data: dict[str, Any], marks: _Marks) -> list[Problem]:
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


def _check_environment(data: dict[str, Any], marks: _Marks, environments: list[str] | None) -> list[Problem]:
    from testledger.lifecycle import ENVIRONMENT_ALIASES

    name = data.get("environment")
    if environments is None or not isinstance(name, str):
        return []
    if ENVIRONMENT_ALIASES.get(name.lower(), name.lower()) in environments:
        return []
    message = f"unknown environment '{name}' (expected one of {', '.join(environments)})"
    return [Problem(*marks.at(("environment",)), message)]


@dataclass(frozen=True, slots=True)
class PipelineFile:
    """A validated pipeline document, its source (secret values hidden) and where it came from."""

    spec: PipelineSpec
    source: str
    filename: str


def parse_pipeline(text: str, *, filename: str = "<pipeline>", environments: list[str] | None = None) -> PipelineFile:
    """Validate a pipeline document; raise `PipelineFileError` listing every problem with its line:column."""
    data, marks = read_document(text, filename=filename)
    problems = _check_references(data, marks) + _check_environment(data, marks, environments)
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(data, marks, e) for e in exc.errors()]
    if problems:
        raise PipelineFileError(filename, problems)
    return PipelineFile(spec=spec, source=_hide_secrets(text, marks.secret_spans), filename=filename)


def _hide_secrets(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = f'{text[:start]}"{MASK}"{text[end:]}'
    return text


def interpolate(value: Any, params: dict[str, str]) -> Any:
    """Replace `${{ params.x }}` in every string of a (nested) value."""
    if isinstance(value, str):
        return PARAM_REF.sub(lambda m: params.get(m[1], m[0]), value) if "${{" in value else value
    if isinstance(value, dict):
        return {k: interpolate(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, params) for v in value]
    return value
