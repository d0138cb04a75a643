"""Pipeline files: every problem reported with line:column; apply stores versions; secrets stay hidden."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testledger.pipelinefile import PipelineFileError, parse_duration, parse_pipeline

BROKEN = """\
key: smoke
name: Smoke tests
environment: stagin
parameters:
  base_url: http://127.0.0.1:8000
timeout: 10x
cases:
  - key: login
    name: Login works
    comand: ./check_login.sh ${{ params.base_url }}
  - key: health
    http:
      url: ${{ params.bse_url }}/healthz
      expect: {status: 200, max_ms: 500, latency: 3}
  - key: health
    pytest: tests
    command: "true"
"""

GOOD = """\
key: smoke
name: Smoke tests
workspace: WKS
parameters:
  base_url: http://127.0.0.1:8000
  api_token: {value: s3cret-value, secret: true}
cases:
  - key: login
    command: echo ${{ params.base_url }}
"""


def test_validate_reports_every_problem_with_line_and_column(cli: Any, pipeline_file: Callable[..., Path]) -> None:
    path = pipeline_file(BROKEN, "smoke.yaml")
    result = cli("pipelines", "validate", str(path))
    assert result.code == 3
    lines = result.stderr.splitlines()
    assert f"{path}:3:14: unknown environment 'stagin' (expected one of dev, staging, prod, local, ci)" in lines
    assert f"{path}:6:10: 'timeout': expected a duration like 30s, 10m, 1h or 500ms, got '10x'" in lines
    assert any(line.startswith(f"{path}:10:5: case 'login': unknown key 'comand' (expected one of command, ")
               for line in lines)
    assert f"{path}:13:12: case 'health': unknown parameter 'bse_url' (expected one of base_url)" in lines
    assert any(line.startswith(f"{path}:14:42: case 'health': unknown key 'latency'") for line in lines)
    assert f"{path}:15:10: duplicate case key 'health'" in lines
    assert any(line.startswith(f"{path}:15:5: case 'health': exactly one of command, pytest or http")
               for line in lines)
    assert lines[-1] == f"{path}: 7 problems"


def test_yaml_syntax_error_has_a_position() -> None:
    with pytest.raises(PipelineFileError) as error:
        parse_pipeline("key: a\ncases: [\n", filename="x.yaml")
    assert str(error.value).startswith("x.yaml:3:1: invalid YAML")


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("30s", 30), ("10m", 600), ("1h", 3600), (5, 5)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_apply_creates_a_version_only_when_the_document_changes(
    cli: Any, pipeline_file: Callable[..., Path]
) -> None:
    path = pipeline_file(GOOD)
    assert cli("pipelines", "apply", str(path)).stdout.strip() == "pipeline WKS/smoke: version 1 (1 case)"
    pipeline_file(GOOD.replace("key: smoke\nname: Smoke tests", "key: smoke\n# a comment\nname:   Smoke tests"))
    assert "unchanged, still version 1" in cli("pipelines", "apply", str(path)).stdout
    pipeline_file(GOOD.replace("echo", "printf"))
    assert "version 2" in cli("pipelines", "apply", str(path)).stdout
    shown = json.loads(cli("pipelines", "show", "smoke", "--json").stdout)
    assert shown["version"] == 2 and shown["parameters"]["api_token"] == "***"
    assert [c["key"] for c in shown["cases"]] == ["login"]
    listed = json.loads(cli("pipelines", "list", "--json").stdout)
    assert [p["key"] for p in listed] == ["smoke"]


def test_stored_source_hides_secret_values() -> None:
    document = parse_pipeline(GOOD)
    assert "s3cret-value" not in document.source and '"***"' in document.source
