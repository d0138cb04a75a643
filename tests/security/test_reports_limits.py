"""Reports that are too big, damaged or odd, and parameters out of range: one clear error (exit 3,
nothing stored) or a documented reading, never a traceback; on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from testledger.db.engine import Store
from testledger.db.tables import ReportFile
from testledger.ingest.model import ReportParseError
from testledger.ingest.sources import open_report

CASE = b'<testcase classname="c" name="t"/>\n'


def refused(cli: Any, *args: str, reason: str) -> str:
    result = cli(*args)
    assert result.code == 3, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert reason in result.stderr, result.stderr
    assert json.loads(cli("runs", "list", "--json").stdout) == []
    return str(result.stderr)


def ingested(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("ingest", *args, "-p", "p", "--json", "--no-fail")
    assert result.code == 0, result.stderr
    return dict(json.loads(result.stdout))


# -- gzip -------------------------------------------------------------------------------------------


def _case_bomb(path: Path, megabytes: int) -> None:
    """Many small test cases: each parses and stores as a row, unlike one huge text node."""
    block = CASE * ((1 << 20) // len(CASE))
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.writelines([b"<testsuite>", *itertools.repeat(block, megabytes), b"</testsuite>"])


def test_gzip_bomb_of_small_cases_is_refused_before_any_case_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml.gz"
    _case_bomb(path, 64)
    entered = False
    with pytest.raises(ReportParseError, match="larger than the 4,194,304-byte limit"), \
            open_report(path, max_bytes=4 << 20):
        entered = True
    assert not entered  # the parser never saw a byte, so no row was ever written


def test_gzip_bomb_of_small_cases_stores_nothing(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTLEDGER_MAX_REPORT_BYTES", str(4 << 20))
    path = tmp_path / "bomb.xml.gz"
    _case_bomb(path, 64)
    refused(cli, "ingest", str(path), "-p", "p", reason="larger than the 4,194,304-byte limit")


def test_a_plain_file_over_the_limit_is_refused_by_its_size(cli: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTLEDGER_MAX_REPORT_BYTES", "1000")
    path = tmp_path / "big.xml"
    path.write_bytes(b"<testsuite>" + CASE * 100 + b"</testsuite>")
    refused(cli, "ingest", str(path), "-p", "p", reason="larger than the 1,000-byte limit")


@pytest.mark.parametrize("where", [10, 30, -12])
def test_damaged_gzip_is_a_clear_error(cli: Any, tmp_path: Path, where: int) -> None:
    data = bytearray(gzip.compress(b"<testsuite>" + CASE * 2000 + b"</testsuite>"))
    data[where : where + 8 or None] = b"\xff" * 8
    path = tmp_path / "damaged.xml.gz"
    path.write_bytes(bytes(data))
    refused(cli, "ingest", str(path), "-p", "p", reason="damaged.xml.gz: not a readable gzip file")


def test_truncated_gzip_is_a_clear_error(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(gzip.compress(b"<testsuite>" + CASE * 2000 + b"</testsuite>")[:200])
    refused(cli, "ingest", str(path), "-p", "p", reason="cut.xml.gz: not a readable gzip file")


# -- JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ctrf.json", '{"results": {"tool": {"name": "x"}, "tests": [{"name": "a\\ud800", "status": "passed"}]}}'),
        ("low.json", '{"results": {"tool": {"name": "x"}, "tests": [{"name": "a", "message": "\\udc00", '
                     '"status": "failed"}]}}'),
        ("mocha.json", '{"stats": {}, "tests": [{"title": "t", "fullTitle": "t", "duration": 1, '
                       '"err": {"message": "x\\ud800y"}}], "pending": []}'),
        ("go.json", '{"Action": "fail", "Package": "p", "Test": "T\\ud800", "Elapsed": 1}\n'),
    ],
)
def test_lone_surrogate_in_json_is_a_clear_error(cli: Any, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    refused(cli, "ingest", str(path), "-p", "p", reason="lone UTF-16 surrogate")


def test_surrogate_pairs_and_escaped_backslashes_are_text(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    tests = [{"name": "smile \ud83d\ude00", "status": "passed"}, {"name": "not an escape \\ud800", "status": "passed"}]
    path.write_text(json.dumps({"results": {"tool": {"name": "x"}, "tests": tests}}))  # ensure_ascii writes \\u pairs
    names = [c["name"] for c in ingested(cli, str(path))["cases"]]
    assert names == ["smile \U0001f600", "not an escape \\ud800"]


def test_json_nested_deeply_is_refused(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"results": {"tool": {"name": "x"}, "tests": [' + "[" * 100_000 + "]" * 100_000 + "]}}")
    refused(cli, "ingest", str(path), "-p", "p", reason="nested more than 256 levels deep")


def test_a_large_ctrf_report_streams_in_flat_memory(tmp_path: Path) -> None:
    """200k tests (~30 MB of JSON): loading it whole took ~300 MB; streaming keeps well under that."""
    import psutil

    from testledger.ingest.model import ReportInfo
    from testledger.ingest.parsers import get_parser

    path = tmp_path / "big.json"
    with path.open("w") as out:
        out.write('{"results": {"tool": {"name": "x"}, "tests": [')
        test = '{"name": "test %d", "status": "failed", "duration": 12, "suite": ["a", "b"], "message": "boom %d"}'
        out.write(",".join(test % (i, i) for i in range(200_000)))
        out.write("]}}")
    process = psutil.Process()
    before = peak = process.memory_info().rss
    count = 0
    with path.open("rb") as stream:
        for _ in get_parser("ctrf").parse(stream, name=path.name, info=ReportInfo(format="ctrf")):
            count += 1
            if count % 10_000 == 0:
                peak = max(peak, process.memory_info().rss)
    assert count == 200_000
    assert peak - before < 60 * 2**20


# -- values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("time", ["9.3e15", "1e306", "1e400", "inf", "nan", "-1", "9223372036854775807"])
def test_absurd_junit_times_are_unknown_durations(cli: Any, tmp_path: Path, time: str) -> None:
    path = tmp_path / "t.xml"
    path.write_text(f'<testsuite><testcase name="huge" time="{time}"/><testcase name="ok" time="2"/></testsuite>')
    run = ingested(cli, str(path))
    assert [c["duration_ms"] for c in run["cases"]] == [None, 2000]
    assert run["duration_ms"] == 2000


def test_absurd_go_and_ctrf_durations_are_unknown(cli: Any, tmp_path: Path) -> None:
    go = tmp_path / "go.json"
    go.write_text('{"Action": "pass", "Package": "p", "Test": "TestHuge", "Elapsed": 1e308}\n'
                  '{"Action": "pass", "Package": "p", "Test": "TestOk", "Elapsed": 0.5}\n')
    assert [c["duration_ms"] for c in ingested(cli, str(go))["cases"]] == [None, 500]
    ctrf = tmp_path / "ctrf.json"
    tests = [{"name": "a", "status": "passed", "duration": 1e19}, {"name": "b", "status": "passed", "duration": 1e300},
             {"name": "c", "status": "passed", "duration": 7}]
    ctrf.write_text(json.dumps({"results": {"tool": {"name": "x"}, "tests": tests}}))
    run = ingested(cli, str(ctrf))
    assert [c["duration_ms"] for c in run["cases"]] == [None, None, 7] and run["duration_ms"] == 7


@pytest.mark.parametrize(
    ("number", "reason"), [("1" + "0" * 30, "integer overflow"), ("1e400", "numeric (floating point) overflow")]
)
def test_json_numbers_beyond_64_bits_are_refused(cli: Any, tmp_path: Path, number: str, reason: str) -> None:
    ctrf = tmp_path / "ctrf.json"
    ctrf.write_text('{"results": {"tool": {"name": "x"}, "tests": [{"name": "a", "status": "passed", "duration": '
                    + number + "}]}}")
    refused(cli, "ingest", str(ctrf), "-p", "p", reason=f"not valid JSON (parse error: {reason}")


# -- file names and folders -----------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_does_not_fail_the_folder(cli: Any, tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "ok.xml").write_bytes(b'<testsuite><testcase name="a"/></testsuite>')
    with open(os.path.join(os.fsencode(folder), b"r\xff.xml"), "wb") as out:
        out.write(b'<testsuite><testcase name="b"/></testsuite>')
    assert ingested(cli, str(folder))["totals"]["tests"] == 2
    with store.read() as db:
        assert sorted(db.scalars(select(ReportFile.name))) == ["ok.xml", "r\ufffd.xml"]


def test_links_that_leave_the_folder_are_not_followed(cli: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.xml").write_text('<testsuite><testcase name="SECRET"/></testsuite>')
    folder = tmp_path / "reports"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "mine.xml").write_text('<testsuite><testcase name="mine"/></testsuite>')
    (folder / "leak.xml").symlink_to(outside / "secret.xml")
    (folder / "linked-dir").symlink_to(outside, target_is_directory=True)
    (folder / "alias.xml").symlink_to(folder / "sub" / "mine.xml")  # stays inside: fine, read once
    result = cli("ingest", str(folder), "-p", "p", "--json")
    assert result.code == 0, result.stderr
    assert [c["name"] for c in json.loads(result.stdout)["cases"]] == ["mine"]
    assert "leak.xml: a link that leaves" in result.stderr and "linked-dir: a link to a folder" in result.stderr


# -- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "limit"), [("--revision", 64), ("--branch", 255)])
def test_run_fields_have_the_same_limits_on_every_store(cli: Any, tmp_path: Path, flag: str, limit: int) -> None:
    path = tmp_path / "a.xml"
    path.write_bytes(b"<testsuite>" + CASE + b"</testsuite>")
    field = flag.removeprefix("--")
    reason = f"{field} is {limit + 1} characters long; at most {limit}"
    refused(cli, "ingest", str(path), "-p", "p", flag, "x" * (limit + 1), reason=reason)
    refused(cli, "runs", "start", "-p", "p", "-e", "ci", flag, "x" * (limit + 1), reason=reason)
    assert ingested(cli, str(path), flag, "x" * limit)["totals"]["tests"] == 1


@pytest.mark.parametrize("index", ["99999999999999999999999", "2147483648", "-1"])
def test_case_index_out_of_range_is_a_clear_error(cli: Any, tmp_path: Path, index: str) -> None:
    path = tmp_path / "a.xml"
    path.write_bytes(b"<testsuite>" + CASE + b"</testsuite>")
    key = ingested(cli, str(path))["execution_id"]
    result = cli("runs", "case", key, "--", index)
    assert result.code == 3, result.stderr
    assert result.stderr == f"error: case index {index} is out of range (cases are numbered from 0; " \
                            f"`runs show {key}` lists them)\n"


def test_report_text_for_narrow_columns_is_cut_to_fit_on_every_store(cli: Any, tmp_path: Path, store: Store) -> None:
    junit = tmp_path / "type.xml"
    junit.write_text(f'<testsuite><testcase name="a"><failure type="{"T" * 300}" message="m"/></testcase></testsuite>')
    assert ingested(cli, str(junit))["cases"][0]["error"] == "T" * 255 + ": m"
    ctrf = tmp_path / "tool.json"
    tests = [{"name": "a", "status": "passed"}]
    ctrf.write_text(json.dumps({"results": {"tool": {"name": "y" * 100}, "tests": tests}}))
    ingested(cli, str(ctrf))
    with store.read() as db:
        assert db.scalar(select(ReportFile.dialect).where(ReportFile.name == "tool.json")) == "y" * 64
