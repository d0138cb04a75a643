"""`testledger logs` of an ingested result prints its stored output instead of saying it printed nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

JUNIT = """<testsuite name="s"><testcase classname="c" name="talks"><system-out>hello out</system-out>
<system-err>oops err</system-err></testcase><testcase classname="c" name="quiet"/></testsuite>"""


def test_logs_of_an_ingested_case_prints_its_stored_output(cli: Callable[..., Any], tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(JUNIT)
    ingested = cli("ingest", str(report), "--pipeline", "p", "--json")
    key = __import__("json").loads(ingested.stdout)["execution_id"]
    shown = cli("logs", key, "--case", "0")
    assert shown.code == 0, shown.stderr
    assert shown.stdout == "hello out\n--- stderr ---\noops err"
    quiet = cli("logs", key, "--case", "1")
    assert quiet.code == 4 and "printed nothing" in quiet.stderr
