"""A finished 100k-case run is folded into the rollups in flat memory: the fold streams the run's results
instead of holding them all (it held ~135 MB and broke `testledger ingest`'s < 150 MB when it ran at the
run's end; it now runs at the next analytics answer or `testledger analytics fold`)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from testledger.analytics import rollup
from testledger.analytics.fold import catch_up, pending
from testledger.db.engine import Store
from testledger.schemas import IngestOptions
from testledger.services import runs
from testledger.services.analytics.slow import slow_tests
from testledger.services.ingest import ingest_files

CASES = 100_000


def _write_report(path: Path) -> None:
    failure = "<failure message='expected 1, got 2' type='AssertionError'>" + "  at frame\n" * 10 + "</failure>"
    with path.open("w", encoding="utf-8") as out:
        out.write("<?xml version='1.0'?>\n<testsuites>\n")
        for suite in range(CASES // 1000):
            out.write(f"<testsuite name='suite{suite}'>\n")
            for index in range(1000):
                body = failure if index % 20 == 0 else ""
                out.write(f"<testcase classname='pkg.C{suite}' name='test_{index}' time='0.002'>{body}</testcase>\n")
            out.write("</testsuite>\n")
        out.write("</testsuites>\n")


def test_a_finished_100k_case_run_is_folded_in_flat_memory(store: Store, tmp_path: Path) -> None:
    report = tmp_path / "big.xml"
    _write_report(report)
    with store.write() as db:
        key = ingest_files(db, workspace="WKS", sources=[report], options=IngestOptions(
            actor="ci-bot", max_report_bytes=1 << 30, pipeline_key="big", environment="ci",
            allowed_environments=["ci"], finish=False)).run_key
    with store.write() as db:
        finished = runs.finish_run(db, workspace="WKS", key=key)
    assert (finished.totals.tests, finished.totals.failed) == (CASES, CASES // 20)
    tracemalloc.start()
    try:
        with store.read() as db:
            assert catch_up(db).runs == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"the fold held {peak / 2**20:.0f} MiB"
    with store.read() as db:  # the fold happened: every test's day row is there
        assert pending(db) == 0
        slowest = slow_tests(db, workspace="WKS", pipeline="big", limit=5)
    assert len(slowest.tests) == 5 and slowest.tests[0].results == 1


def test_a_test_met_again_after_a_chunk_was_written_still_sums(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rollup, "DAY_ROWS_PER_WRITE", 1)  # every new test writes the rows before it
    report = tmp_path / "repeats.xml"
    report.write_text(
        "<testsuite name='s'><testcase classname='t' name='test_twice' time='1'/>"
        "<testcase classname='t' name='test_between' time='2'/>"
        "<testcase classname='t' name='test_twice' time='3'/></testsuite>", encoding="utf-8")
    with store.write() as db:
        ingest_files(db, workspace="WKS", sources=[report], options=IngestOptions(
            actor="ci-bot", max_report_bytes=1 << 20, pipeline_key="small", environment="ci",
            allowed_environments=["ci"]))
    with store.read() as db:
        slowest = {t.test: t for t in slow_tests(db, workspace="WKS", pipeline="small").tests}
    assert (slowest["t::test_twice"].results, slowest["t::test_twice"].max_ms) == (2, 3000)
    assert slowest["t::test_between"].results == 1
