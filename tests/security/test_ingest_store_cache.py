"""A long-lived process keeps ingesting after another connection deleted the cases it wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text


def test_cases_deleted_by_another_connection_are_written_again(
    cli: Callable[..., Any], tmp_path: Path, store_url: str
) -> None:
    report = tmp_path / "r.xml"
    report.write_text('<testsuite><testcase classname="c" name="a"/><testcase classname="c" name="b"/></testsuite>')
    assert cli("ingest", str(report), "-p", "unit").code == 0
    engine = create_engine(store_url)  # another connection, as retention or an admin would delete
    with engine.begin() as conn:
        for table in ("case_results", "report_files", "test_runs", "cases"):
            conn.execute(text(f"DELETE FROM {table}"))
    second = cli("ingest", str(report), "-p", "unit", "--json")
    assert second.code == 0, second.stderr
    assert json.loads(second.stdout)["totals"]["tests"] == 2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar() == 2
    engine.dispose()
