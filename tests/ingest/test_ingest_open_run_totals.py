"""Ingesting into an open run (`--run KEY`) answers with the run's totals after the ingest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT = (
    '<testsuite><testcase classname="c" name="a"/>'
    '<testcase classname="c" name="b"><failure message="boom">trace</failure></testcase></testsuite>'
)


def test_ingest_into_an_open_run_reports_the_new_totals(cli: Any, tmp_path: Path) -> None:
    key = cli("runs", "start", "--pipeline", "payments", "--env", "ci").stdout.strip()
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    ingested = cli("ingest", str(report), "--run", key, "--json")
    assert ingested.code == 0, ingested.stderr
    totals = json.loads(ingested.stdout)["totals"]
    assert (totals["tests"], totals["passed"], totals["failed"]) == (2, 1, 1)
