"""A 100k-case JUnit file streams in flat memory: consumed elements are freed as cases are yielded."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import psutil

from testledger.ingest.model import ReportInfo
from testledger.ingest.parsers import get_parser

CASES = 100_000


def _write_report(path: Path) -> None:
    failure = "<failure message='boom' type='AssertionError'>" + "  at frame\n" * 40 + "</failure>"
    with path.open("w", encoding="utf-8") as out:
        out.write("<?xml version='1.0'?>\n<testsuites>\n")
        for suite in range(CASES // 1000):
            out.write(f"<testsuite name='suite{suite}'>\n")
            for index in range(1000):
                body = failure if index % 20 == 0 else "<system-out>out</system-out>" if index % 10 == 0 else ""
                out.write(f"<testcase classname='pkg.C{suite}' name='test_{index}' time='0.001'>{body}</testcase>\n")
            out.write("</testsuite>\n")
        out.write("</testsuites>\n")


def test_100k_case_report_keeps_memory_flat(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    _write_report(path)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    rss_peak = rss_before
    count = failed = 0
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            for case in get_parser("junit").parse(stream, name=path.name, info=ReportInfo(format="junit")):
                count += 1
                failed += case.status == "failed"
                if count % 10_000 == 0:
                    rss_peak = max(rss_peak, process.memory_info().rss)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (count, failed) == (CASES, CASES // 20)
    assert peak < 50 * 2**20
    # tracemalloc cannot see libxml2's own allocations; resident memory can. Building the
    # whole tree for this ~10 MB file would add well over 100 MB.
    assert rss_peak - rss_before < 60 * 2**20
