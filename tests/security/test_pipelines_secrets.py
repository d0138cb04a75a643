"""No secret value at rest: a pipeline names where a secret lives, the value is read at run time, and
neither the stored pipeline, the run, its results nor its attachments' names hold it in clear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pipelines_support import run_json, write_pipeline
from sqlalchemy import create_engine, text

from testledger.pipelinefile import parse_pipeline

FROM_ENV, FROM_FILE, GIVEN = "env-s3cret-4471", "file-s3cret-8812", "param-s3cret-5519"

PIPELINE = """\
key: atrest
parameters:
  api: {secret: true, from_env: TL_TEST_API_TOKEN}
  filed: {secret: yes, from_file: token.txt}
  given: {secret: on}
  plain: visible
cases:
  - key: use
    command: echo "${{ params.api }} ${{ params.filed }} ${{ params.given }} ${{ params.plain }}"
  - key: attach
    command: >-
      mkdir -p "$TESTLEDGER_ATTACHMENTS_DIR/dir-${{ params.given }}" &&
      echo shot > "$TESTLEDGER_ATTACHMENTS_DIR/shot-${{ params.given }}.png" &&
      echo x > "$TESTLEDGER_ATTACHMENTS_DIR/dir-${{ params.given }}/x.txt"
"""


def stored_text(store_url: str) -> bytes:
    """Everything the store holds: the SQLite files' bytes (`strings`), or every row of every table of
    the PostgreSQL schema as text (a dump)."""
    if store_url.startswith("sqlite"):
        database = Path(store_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )).scalars().all()
            rows = [conn.execute(text(f'SELECT CAST(t AS text) FROM "{name}" AS t')).scalars().all() for name in tables]
    finally:
        engine.dispose()
    assert "pipeline_versions" in tables
    return "\n".join(r for table in rows for r in table).encode()


@pytest.fixture
def atrest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TL_TEST_API_TOKEN", FROM_ENV)
    (tmp_path / "token.txt").write_text(FROM_FILE + "\n")
    monkeypatch.chdir(tmp_path)  # `run KEY` reads `from_file` relative to where it starts
    return write_pipeline(tmp_path, PIPELINE)


def test_no_secret_value_is_stored_after_apply_run_and_run_key(cli: Any, store_url: str, atrest: Path) -> None:
    assert cli("pipelines", "apply", str(atrest)).code == 0
    first = run_json(cli, str(atrest), "--param", f"given={GIVEN}")
    again = run_json(cli, "atrest", "--param", f"given={GIVEN}")
    for ran in (first, again):
        assert ran.code == 0, ran.run["cases"]
        assert ran.run["parameters"] == {"api": "***", "filed": "***", "given": "***", "plain": "visible"}
        log = cli("logs", ran.run["execution_id"], "--case", "0").stdout
        assert log.strip() == "*** *** *** visible"  # read at run time, from the environment and the file
    dump = stored_text(store_url)
    for secret in (FROM_ENV, FROM_FILE, GIVEN):
        assert secret.encode() not in dump, secret
    assert b"TL_TEST_API_TOKEN" in dump and b"token.txt" in dump  # where it comes from is stored, not what


def test_a_missing_secret_source_is_a_clear_error_and_no_run(cli: Any, atrest: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("TL_TEST_API_TOKEN")
    result = cli("run", str(atrest), "--param", f"given={GIVEN}")
    assert result.code == 3 and "Traceback" not in result.stderr
    assert "TL_TEST_API_TOKEN" in result.stderr and "not set" in result.stderr
    assert json.loads(cli("runs", "list", "--json").stdout or "[]") == []


def test_secret_attachment_names_are_masked(cli: Any, store_url: str, atrest: Path) -> None:
    ran = run_json(cli, str(atrest), "--param", f"given={GIVEN}")
    key = ran.run["execution_id"]
    case = json.loads(cli("runs", "case", key, "1", "--json").stdout)
    assert len(case["attachments"]) == 2 and all("***" in p for p in case["attachments"])
    for path in case["attachments"]:
        assert Path(path).is_file()  # the stored path still leads to the file
    shown = [cli("runs", "case", key, "1").stdout, cli("runs", "show", key, "--json").stdout,
             cli("export", key, "--format", "ctrf").stdout]
    assert "shot-***.png" in shown[2]
    for output in shown:
        assert GIVEN not in output
    assert GIVEN.encode() not in stored_text(store_url)


@pytest.mark.parametrize("spelling", ["true", "True", "yes", "Yes", "on", "ON", "y", "1", "'true'"])
def test_a_literal_secret_in_the_file_is_refused_whatever_the_spelling(
    cli: Any, store_url: str, tmp_path: Path, spelling: str
) -> None:
    path = write_pipeline(tmp_path, f"""\
        key: literal
        parameters:
          token: {{value: literal-s3cret-3318, secret: {spelling}}}
        cases:
          - {{key: a, command: 'echo ${{{{ params.token }}}}'}}
        """)
    result = cli("pipelines", "apply", str(path))
    assert result.code == 3
    assert f"{path}:3:" in result.stderr and "from_env" in result.stderr and "from_file" in result.stderr
    assert b"literal-s3cret-3318" not in stored_text(store_url)


def test_the_stored_source_is_the_file_as_written(cli: Any, store_url: str, tmp_path: Path) -> None:
    """No string surgery: anchors, merge keys and block scalars survive and read back to the same pipeline."""
    source = """\
        key: verbatim
        parameters:
          token: &tok {secret: true, from_env: TL_TEST_TOKEN_NAME}
          again: *tok
        env: &common {A: "1"}
        cases:
          - key: block
            command:
              run: |
                echo "${{ params.token }}"
                echo done
              env: {<<: *common, B: "2"}
        """
    path = write_pipeline(tmp_path, source)
    assert cli("pipelines", "apply", str(path)).code == 0
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT source FROM pipeline_versions")).scalar_one()
    finally:
        engine.dispose()
    assert stored == path.read_text()
    assert parse_pipeline(stored).spec == parse_pipeline(path.read_text()).spec


def test_a_version_stored_before_the_rule_no_longer_uses_its_secret_value() -> None:
    from testledger.pipelinefile import PipelineSpec

    legacy = {"key": "old", "parameters": {"token": {"value": "legacy-s3cret", "secret": True}, "plain": {"value": 1}},
              "cases": [{"key": "a", "command": {"run": "true"}}]}
    spec = PipelineSpec.from_stored(legacy)
    assert spec.parameters["token"].value is None and spec.parameters["plain"].value == 1
    assert "legacy-s3cret" not in json.dumps(spec.stored())
