"""What a new user meets on the command line (issue 9): clear errors, one vocabulary, what to look for next."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from testledger.db.engine import Store

PASSING = '<testsuite name="api"><testcase classname="api.Login" name="test_login" time="1"/></testsuite>'
PIPELINE = """\
key: {key}
parameters:
  token: {{from_file: token.txt, secret: true}}
cases:
  - key: reads
    command: {{run: "test -f here.txt"}}
"""


def _runs(cli: Any, *args: str) -> list[dict[str, Any]]:
    result = cli("runs", "list", "--json", *args)
    assert result.code == 0, result.stderr
    items: list[dict[str, Any]] = json.loads(result.stdout)
    return items


def _pipeline(folder: Path, key: str = "files") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yaml"
    path.write_text(PIPELINE.format(key=key))
    return path


def test_a_run_that_cannot_start_is_never_created(cli: Any, tmp_path: Path) -> None:
    path = _pipeline(tmp_path / "p")  # its from_file secret token.txt is missing
    missing = cli("run", str(path))
    assert missing.code == 3 and "token.txt" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "p" / "token.txt").write_text("s3cret\n")
    bad = cli("run", str(path), "--parallel", "0")
    assert bad.code == 3 and "--parallel" in bad.stderr
    unknown = cli("run", str(path), "-P", "tokn=x")
    assert unknown.code == 3
    assert unknown.stderr == "error: unknown parameter 'tokn' for pipeline 'files' (expected one of token)\n"
    (tmp_path / "p" / "token.txt").write_bytes(b"s3c\0ret\n")  # no process can be given it
    nul = cli("run", str(path))
    assert nul.code == 3 and nul.stderr == (
        "error: parameter 'token' holds a NUL character, which no process can be given; remove it\n")
    assert _runs(cli) == []


def test_a_stored_pipeline_runs_in_its_files_directory(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    path = _pipeline(folder)
    (folder / "token.txt").write_text("s3cret")
    (folder / "here.txt").write_text("x")
    assert cli("pipelines", "apply", str(path)).code == 0
    monkeypatch.chdir("/")
    result = cli("run", "files", "--json")
    assert result.code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["result"] == "PASSED"


def test_export_errors_are_one_line_and_leave_no_file(cli: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "r.xml"
    report.write_text(PASSING)
    key = json.loads(cli("ingest", str(report), "-p", "unit", "--json").stdout)["execution_id"]
    monkeypatch.chdir(tmp_path)
    missing_dir = cli("export", key, "-o", "missing/dir/x.json")
    assert missing_dir.code == 4 and "missing/dir" in missing_dir.stderr and "Traceback" not in missing_dir.stderr
    missing_run = cli("export", "WKS-0101-999", "-o", "out.xml")
    assert missing_run.code == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "r.xml"]
    assert cli("export", key, "--format", "ctrf", "-o", "out.json").code == 0
    assert json.loads((tmp_path / "out.json").read_text())["results"]["summary"]["tests"] == 1


def test_a_folder_skips_what_is_no_report_but_a_named_file_is_refused(cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "a.xml").write_text(PASSING)
    (folder / "notes.txt").write_text("remember the milk\n")
    walked = cli("ingest", str(folder), "-p", "unit", "--json")
    assert walked.code == 0, walked.stderr
    assert "note: skipped notes.txt: not a test report" in walked.stderr
    assert json.loads(walked.stdout)["totals"]["tests"] == 1
    named = cli("ingest", str(folder / "notes.txt"), str(folder / "a.xml"), "-p", "unit")
    assert named.code == 3 and "notes.txt" in named.stderr and "--partial" in named.stderr


def test_ingest_help_says_pipeline_or_run_is_required(cli: Any) -> None:
    text = cli("ingest", "--help").stdout
    assert "Required unless --run is given" in text
    assert "list[str]" not in text and "list[str]" not in cli("runs", "delete", "--help").stdout


def test_one_meaning_per_short_flag(cli: Any, tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(PASSING)
    assert cli("ingest", str(report), "-p", "unit").code == 0
    assert [r["pipeline_key"] for r in _runs(cli, "-p", "unit")] == ["unit"]
    assert "-P, --param" in cli("run", "--help").stdout
    assert "-f," not in cli("export", "--help").stdout
    assert "-f, --follow" in cli("logs", "--help").stdout


def test_one_default_environment_validated_everywhere(cli: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "r.xml"
    report.write_text(PASSING)
    cli("ingest", str(report), "-p", "unit")
    started = cli("runs", "start", "-p", "unit", "--json")
    assert started.code == 0, started.stderr
    monkeypatch.setenv("CI", "true")
    cli("ingest", str(report), "-p", "unit")
    assert [r["environment"] for r in _runs(cli)] == ["ci", "local", "local"]
    for args in (("runs", "list", "--env", "qa"), ("runs", "start", "-p", "unit", "--env", "qa"),
                 ("ingest", str(report), "-p", "unit", "--env", "qa")):
        result = cli(*args)
        assert result.code == 3 and "unknown environment 'qa'" in result.stderr, args


def test_runs_list_filters_and_a_next_page_hint_to_paste(cli: Any, tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(PASSING)
    cli("ingest", str(report), "-p", "unit", "--branch", "main", "--revision", "abc", "--label", "team=pay")
    cli("ingest", str(report), "-p", "unit", "--branch", "dev", "--trigger", "api")
    assert len(_runs(cli, "-b", "main")) == 1
    assert len(_runs(cli, "--revision", "abc")) == 1
    assert len(_runs(cli, "--trigger", "api")) == 1
    assert len(_runs(cli, "--label", "team=pay")) == 1
    assert _runs(cli, "--label", "team=ops") == []
    page = cli("runs", "list", "--pipeline", "unit", "-n", "1")
    assert "More: testledger runs list --pipeline unit -n 1 --cursor " in page.stdout
    cursor = page.stdout.rsplit("--cursor ", 1)[1].split()[0]
    assert len(_runs(cli, "--pipeline", "unit", "-n", "1", "--cursor", cursor)) == 1
    key = _runs(cli, "--branch", "main")[0]["execution_id"]
    shown = cli("runs", "show", key).stdout
    assert "Branch: main" in shown and "Labels: team=pay" in shown and "Trigger: manual by tester" in shown


def test_runs_delete_removes_the_run_and_its_files(cli: Any, home: Path, tmp_path: Path, store: Store) -> None:
    report = tmp_path / "r.xml"
    report.write_text(PASSING)
    kept = json.loads(cli("ingest", str(report), "-p", "unit", "--json").stdout)["execution_id"]
    report.write_text(PASSING.replace("<testsuite", "<testsuite hostname='again'"))
    key = json.loads(cli("ingest", str(report), "-p", "unit", "--json").stdout)["execution_id"]
    (home / "logs" / key).mkdir(parents=True)
    (home / "logs" / key / "0.log").write_text("out")
    refused = cli("runs", "delete", key)  # not a terminal and no --yes
    assert refused.code == 3 and "--yes" in refused.stderr and len(_runs(cli)) == 2
    open_key = cli("runs", "start", "-p", "unit").stdout.strip()
    assert cli("runs", "delete", open_key, "--yes").code == 3
    deleted = cli("runs", "delete", key, "--yes")
    assert deleted.code == 0, deleted.stderr
    assert [r["execution_id"] for r in _runs(cli)] == [open_key, kept]
    assert not (home / "logs" / key).exists()
    assert cli("runs", "show", key).code == 4
    # Its results and report files went with it; the other run's stayed.
    with store.read() as db:
        left = db.execute(text(
            "SELECT r.key, count(DISTINCT c.id), count(DISTINCT f.id) FROM case_results c "
            "LEFT JOIN test_runs r ON r.id = c.run_id LEFT JOIN report_files f ON f.run_id = c.run_id GROUP BY r.key"
        )).all()
    assert [tuple(row) for row in left] == [(kept, 1, 1)]


def test_report_sources_are_shown_as_such_and_can_be_deleted(cli: Any, tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(PASSING)
    key = json.loads(cli("ingest", str(report), "-p", "unit", "--json").stdout)["execution_id"]
    assert "reports only" in cli("pipelines", "list").stdout
    assert "reports only" in cli("pipelines", "show", "unit").stdout
    run = cli("run", "unit")
    assert run.code == 3 and "no cases to run" in run.stderr
    assert cli("pipelines", "delete", "unit", "--yes").code == 3  # its run refers to it
    assert cli("runs", "delete", key, "--yes").code == 0
    assert cli("pipelines", "delete", "unit", "--yes").code == 0
    assert "No pipelines found." in cli("pipelines", "list").stdout


def test_data_commands_print_json(cli: Any, tmp_path: Path) -> None:
    path = _pipeline(tmp_path / "p")
    assert json.loads(cli("pipelines", "validate", str(path), "--json").stdout)["key"] == "files"
    upgraded = json.loads(cli("db", "upgrade", "--json").stdout)
    assert upgraded["upgraded"] is False and upgraded["revision"] == upgraded["from"]
