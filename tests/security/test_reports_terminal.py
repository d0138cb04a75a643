"""Report text never drives the terminal: control sequences are shown escaped by every human printer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CLEAR = "\x1b[2J\x1b[H"
LINK = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
RED = "\x1b[31m"
BELL_TITLE = "\x1b]0;pwned\x07"
NAME = f"test_{CLEAR}login{LINK}"
MESSAGE = f"{RED}boom{BELL_TITLE} \x9b31m \u202eevil"
INJECTED = ("\x1b[2J", "\x1b]8;;", "\x1b]0;", "\x07", "\x9b", "\u202e")


def _write_report(tmp_path: Path) -> Path:
    # JSON can carry any control character (XML 1.0 cannot, not even as a character reference).
    path = tmp_path / "ansi.json"
    ctrf = {"results": {"tool": {"name": "t"}, "tests": [
        {"name": NAME, "status": "failed", "duration": 5, "message": MESSAGE, "trace": f"trace {CLEAR}line",
         "stdout": [f"out {LINK}"], "suite": f"s{CLEAR}"},
    ]}}
    path.write_text(json.dumps(ctrf))
    return path


@pytest.fixture
def run_key(cli: Any, tmp_path: Path) -> str:
    result = cli("ingest", str(_write_report(tmp_path)), "-p", "p", "--json", "--no-fail")
    assert result.code == 0, result.stderr
    return str(json.loads(result.stdout)["execution_id"])


def _assert_escaped(out: str) -> None:
    for sequence in INJECTED:
        assert sequence not in out, repr(out)
    assert "\\x1b[2J" in out


@pytest.mark.parametrize("terminal", [False, True])
def test_ingest_summary_shows_escape_sequences_escaped(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    if terminal:
        monkeypatch.setenv("FORCE_COLOR", "1")  # Rich then writes as to a terminal, with its own styles
    result = cli("ingest", str(_write_report(tmp_path)), "-p", "p")
    assert result.code == 1, result.stderr
    _assert_escaped(result.stdout)
    assert "\\x1b[31mboom" in result.stdout


@pytest.mark.parametrize("terminal", [False, True])
def test_runs_show_and_case_show_escape_sequences_escaped(
    cli: Any, run_key: str, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    if terminal:
        monkeypatch.setenv("FORCE_COLOR", "1")
    show = cli("runs", "show", run_key)
    assert show.code == 0
    _assert_escaped(show.stdout)
    case = cli("runs", "case", run_key, "0")
    assert case.code == 0
    _assert_escaped(case.stdout)
    assert "trace \\x1b[2J\\x1b[Hline" in case.stdout and "\\u202eevil" in case.stdout


def test_json_output_keeps_the_text_as_json_escapes(cli: Any, run_key: str) -> None:
    raw = cli("runs", "case", run_key, "0", "--json").stdout
    assert "\x1b" not in raw and "\\u001b[2J" in raw
    case = json.loads(raw)
    assert case["name"] == NAME and case["message"] == MESSAGE and case["stdout"] == f"out {LINK}"


def test_error_lines_quoting_a_file_name_are_escaped(cli: Any, tmp_path: Path) -> None:
    result = cli("ingest", str(tmp_path / f"missing{CLEAR}.xml"), "-p", "p")
    assert result.code == 4
    assert "\x1b" not in result.stderr and "missing\\x1b[2J" in result.stderr


def test_printable_escapes_controls_and_keeps_lines() -> None:
    from testledger.cli.render import printable

    assert printable("a\x1b[2Jb\tc\nd\r\ne\rf\x00\x7f") == "a\\x1b[2Jb\tc\nd\ne\\x0df\\x00\\x7f"
    assert printable("snow ☃ and ünïcode") == "snow ☃ and ünïcode"
    assert printable(None) == ""
