"""Hostile pipeline documents are refused quickly and clearly (exit 3, `file:line:col: message`):
alias bombs, deep nesting, oversized documents, and time limits that are not finite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pipelines_support import limited_process

from testledger.pipelinefile import PipelineFileError, parse_pipeline

LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)

MERGES = "\n".join(
    [
        "a: &a {x: 1, y: 2}",
        *(f"{n}: &{n} {{<<: [*{p}, *{p}, *{p}, *{p}]}}" for p, n in zip("abcdefghijklmnopq", "bcdefghijklmnopqr",
                                                                       strict=True)),
    ]
)


def _pipeline_with(extra: str, body: str) -> str:
    return f"key: bomb\n{extra}\ncases:\n  - key: post\n    http: {{url: 'http://127.0.0.1:9/', body: {body}}}\n"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("laughs-top", LAUGHS + "\nkey: bomb\ncases: *i\n"),
        ("laughs-body", _pipeline_with(LAUGHS, "*i")),
        ("merges", _pipeline_with(MERGES, "*r")),
        ("deep-flow", "key: deep\ncases: " + "[" * 50_000 + "]" * 50_000 + "\n"),
        ("deep-block", "key: deep\ncases:\n" + "".join(" " * i + "- \n" for i in range(1, 1200)) + "\n"),
        ("huge-int", "key: big\nparallelism: " + "9" * 100_000 + "\ncases: []\n"),
        ("oversized", "key: big\n# " + "x" * 3_000_000 + "\ncases: []\n"),
    ],
)
def test_bombs_are_refused_clearly_within_bounds(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    assert len(LAUGHS) < 600  # the issue's 526-byte document, give or take the keys
    result = limited_process("pipelines", "validate", str(path), timeout=30, memory_mb=768)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:"), first
    line, column = first.removeprefix(f"{path}:").split(":")[:2]
    assert line.isdigit() and column.isdigit(), first


def test_the_issue_526_byte_alias_bomb_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS + "\nkey: bomb\ncases: *i\n")
    result = limited_process("pipelines", "validate", str(path), timeout=30, memory_mb=768)
    assert result.returncode == 3
    assert "alias" in result.stderr.splitlines()[0]


def test_deep_nesting_names_the_limit() -> None:
    with pytest.raises(PipelineFileError) as error:
        parse_pipeline("key: deep\ncases: " + "[" * 50_000 + "]" * 50_000 + "\n", filename="d.yaml")
    # Our limit (64 levels), or libyaml's own when it scans that far ahead first: both name the nesting.
    assert "nests deeper than 64 levels" in str(error.value) or "maximum nesting depth" in str(error.value)


def test_a_reasonable_pipeline_with_aliases_still_works() -> None:
    document = parse_pipeline(
        "key: ok\nenv: &common {A: '1'}\ncases:\n"
        "  - {key: a, command: {run: 'true', env: *common}}\n"
        "  - {key: b, command: {run: 'true', env: &merged {<<: *common, A: '0', B: '2'}}}\n"
        "  - {key: c, command: {run: 'true', env: *merged}}\n"
    )
    envs = [case.command.env for case in document.spec.cases if case.command is not None]
    assert envs == [{"A": "1"}, {"A": "0", "B": "2"}, {"A": "0", "B": "2"}]  # own keys win over merged ones


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN", "99999999999h", "1e400", "8d", "700000000s"])
@pytest.mark.parametrize("field", ["timeout", "case_timeout", "case"])
def test_time_limits_are_finite_positive_and_bounded(field: str, value: str) -> None:
    top = f"{field}: {value}\n" if field != "case" else ""
    case = f", timeout: {value}" if field == "case" else ""
    with pytest.raises(PipelineFileError) as error:
        parse_pipeline(f"key: t\n{top}cases:\n  - {{key: a, command: 'true'{case}}}\n", filename="t.yaml")
    message = str(error.value)
    assert message.startswith("t.yaml:") and ("7 days" in message or "duration" in message), message


@pytest.mark.parametrize("value", [".inf", ".nan", "-1", "1e12"])
def test_http_latency_limit_is_finite_and_bounded(value: str) -> None:
    with pytest.raises(PipelineFileError):
        parse_pipeline(f"key: t\ncases:\n  - {{key: a, http: {{url: 'http://x/', expect: {{max_ms: {value}}}}}}}\n")


@pytest.mark.parametrize(("field", "value"), [("parallelism", "100000"), ("retries", "1000"), ("parallelism", "0")])
def test_counts_are_bounded(field: str, value: str) -> None:
    with pytest.raises(PipelineFileError):
        parse_pipeline(f"key: t\n{field}: {value}\ncases:\n  - {{key: a, command: 'true'}}\n")


def test_a_nan_timeout_never_reaches_a_run(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "nan.yaml"
    path.write_text("key: nan\ncases:\n  - {key: a, command: 'sleep 0', timeout: .nan}\n")
    result = cli("run", str(path))
    assert result.code == 3 and "Traceback" not in result.stderr
    assert f"{path}:3:" in result.stderr
    assert cli("runs", "list", "--json").stdout.strip() in ("[]", "")


def test_parallel_override_is_bounded(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("key: p\ncases:\n  - {key: a, command: 'true'}\n")
    result = cli("run", str(path), "--parallel", "1000000")
    assert result.code == 3 and "--parallel" in result.stderr
