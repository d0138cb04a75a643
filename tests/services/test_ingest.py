"""Ingesting reports into a store: one run, atomic, idempotent, gzip, size cap, open runs, reruns."""

from __future__ import annotations

import gzip
import io
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import func, select

from testledger.db import records
from testledger.db.bulk import stored_case_ids
from testledger.db.engine import Store
from testledger.db.tables import Case, CaseResult, ReportFile, Run
from testledger.errors import Conflict, Invalid
from testledger.ingest import parse_process
from testledger.ingest.convert import MAX_ATTEMPTS_KEPT
from testledger.schemas import IngestOptions
from testledger.services import runs
from testledger.services.ingest import ReportSource, ReportStream, ingest_files

ENVS = ("ci", "staging")

PASSING = """<?xml version="1.0"?>
<testsuite name="unit" tests="2">
  <testcase classname="app.Login" name="test_ok" time="0.5"/>
  <testcase classname="app.Login" name="test_skip" time="0"><skipped message="not on linux"/></testcase>
</testsuite>
"""
FAILING = """<testsuites><testsuite name="api">
  <testcase classname="api.Health" name="test_status" time="1.25">
    <failure message="Expected status 200, got 500" type="AssertionError">Traceback: line 3</failure>
    <system-out>GET /healthz</system-out>
  </testcase>
  <testcase classname="api.Db" name="test_query" time="0.1">
    <error message="could not connect: Connection refused" type="OperationalError"/>
  </testcase>
</testsuite></testsuites>
"""
RERUN = """<testsuite name="flaky">
  <testcase classname="t" name="test_a" time="1"><failure message="boom"/></testcase>
  <testcase classname="t" name="test_a" time="2"/>
  <testcase classname="t" name="test_same_name" time="1"/>
  <testcase classname="t" name="test_same_name" time="1"/>
</testsuite>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def options(**kw: Any) -> IngestOptions:
    defaults = {"pipeline_key": "unit", "environment": "ci"} if "run_key" not in kw else {}
    return IngestOptions(**{"actor": "ci-bot", "max_report_bytes": 1 << 20, "allowed_environments": ENVS,
                            **defaults, **kw})


def ingest(store: Store, sources: Sequence[ReportSource], **kw: Any) -> str:
    with store.write() as db:
        return ingest_files(db, workspace="WKS", sources=sources, options=options(**kw)).run_key


def execution(store: Store, key: str):  # type: ignore[no-untyped-def]
    with store.read() as db:
        return runs.get_execution(db, workspace="WKS", key=key)


def count(store: Store, table: type) -> int:
    with store.read() as db:
        return int(db.scalar(select(func.count()).select_from(table)) or 0)


def test_files_become_one_completed_run(store: Store, tmp_path: Path) -> None:
    key = ingest(store, [write(tmp_path, "a.xml", PASSING), write(tmp_path, "b.xml", FAILING)])
    e = execution(store, key)
    assert (e.status, e.result) == ("COMPLETED", "ERROR")  # the refused connection is an infrastructure fault
    assert (e.totals.tests, e.totals.passed, e.totals.failed, e.totals.errors, e.totals.skipped) == (4, 1, 1, 1, 1)
    cases = {c.name: c for c in e.cases or []}
    assert cases["test_status"].error == "AssertionError: Expected status 200, got 500"
    assert cases["test_status"].failure_category == "assertion"
    assert cases["test_status"].duration_ms == 1250
    assert cases["test_query"].failure_category == "infrastructure"
    assert [c.index for c in e.cases or []] == [0, 1, 2, 3]


def test_a_bad_file_stores_nothing_unless_partial(store: Store, tmp_path: Path) -> None:
    good = write(tmp_path, "good.xml", PASSING)
    bad = write(tmp_path, "bad.xml", "<testsuite><testcase name='x'>\n<failure>\n</testsuite>")
    with pytest.raises(Invalid, match=r"bad\.xml:\d+: .*nothing was stored"):
        ingest(store, [good, bad])
    assert count(store, Run) == 0 and count(store, CaseResult) == 0
    key = ingest(store, [good, bad], partial=True)
    assert execution(store, key).totals.tests == 2


def test_same_file_twice_into_one_run_is_not_duplicated(store: Store, tmp_path: Path) -> None:
    report = write(tmp_path, "a.xml", FAILING)
    with store.write() as db:
        key = records.create_run(db, workspace="WKS", actor="me", environment="ci", allowed_environments=ENVS,
                                 pipeline_key="unit").key
    ingest(store, [report], run_key=key)
    ingest(store, [report, write(tmp_path, "b.xml", PASSING)], run_key=key)
    e = execution(store, key)
    assert e.status == "RUNNING" and e.totals.tests == 4
    assert [c.index for c in e.cases or []] == [0, 1, 2, 3]


def test_finished_run_refuses_more_reports(store: Store, tmp_path: Path) -> None:
    key = ingest(store, [write(tmp_path, "a.xml", PASSING)])
    with pytest.raises(Conflict, match="already completed"):
        ingest(store, [write(tmp_path, "b.xml", FAILING)], run_key=key)
    assert execution(store, key).totals.tests == 2


def test_gzip_reports_are_read(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "report.xml.gz"
    path.write_bytes(gzip.compress(FAILING.encode()))
    assert execution(store, ingest(store, [path])).totals.tests == 2


def test_size_cap_applies_after_decompression(store: Store, tmp_path: Path) -> None:
    body = "".join(f'<testcase classname="c" name="t{i}"/>' for i in range(5000))
    path = tmp_path / "big.xml.gz"
    path.write_bytes(gzip.compress(f"<testsuite>{body}</testsuite>".encode()))
    assert path.stat().st_size < 20_000
    with pytest.raises(Invalid, match=r"larger than the 20,000-byte limit.*TESTLEDGER_MAX_REPORT_BYTES"):
        ingest(store, [path], max_report_bytes=20_000)
    assert count(store, Run) == 0


def test_reruns_become_attempts_but_same_name_passes_stay_separate(store: Store, tmp_path: Path) -> None:
    e = execution(store, ingest(store, [write(tmp_path, "r.xml", RERUN)]))
    assert [(c.name, c.status, c.attempts, c.flaky) for c in e.cases or []] == [
        ("test_a", "PASSED", 2, True), ("test_same_name", "PASSED", 1, False), ("test_same_name", "PASSED", 1, False),
    ]
    assert (e.totals.tests, e.totals.passed, e.totals.flaky) == (3, 3, 1)
    assert (e.cases or [])[0].duration_ms == 3000


def test_rerun_beyond_a_written_batch_updates_the_stored_result(store: Store, tmp_path: Path) -> None:
    filler = "".join(f'<testcase classname="c" name="t{i}"/>' for i in range(6000))
    doc = (f'<testsuite><testcase classname="c" name="wobbly"><failure message="no"/></testcase>{filler}'
           '<testcase classname="c" name="wobbly"/></testsuite>')
    e = execution(store, ingest(store, [write(tmp_path, "big.xml", doc)]))
    first = (e.cases or [])[0]
    assert (first.name, first.status, first.attempts, first.flaky) == ("wobbly", "PASSED", 2, True)
    assert (e.totals.tests, e.totals.passed, e.totals.failed, e.totals.flaky) == (6001, 6001, 0, 1)


def test_unknown_environment_is_rejected_before_anything_is_stored(store: Store, tmp_path: Path) -> None:
    with store.write() as db, pytest.raises(Invalid, match="unknown environment 'qa'"):
        ingest_files(db, workspace="WKS", sources=[write(tmp_path, "a.xml", PASSING)],
                     options=options(environment="qa"))
    assert count(store, Run) == 0


def test_partial_ingest_rolls_back_cases_of_a_failed_file_cleanly(store: Store, tmp_path: Path) -> None:
    # The broken file writes a full batch (new cases included) before failing; its savepoint is rolled
    # back, so those cases must not be remembered as stored: a later run of the same tests stores them.
    cases = "".join(f'<testcase classname="c" name="t{i}"/>' for i in range(5200))
    broken = write(tmp_path, "a_broken.xml", f"<testsuite>{cases}<testcase>")
    other = write(tmp_path, "b_other.xml", PASSING)
    key = ingest(store, [broken, other], partial=True)
    assert execution(store, key).totals.tests == 2
    again = ingest(store, [write(tmp_path, "c_same_tests.xml", f"<testsuite>{cases}</testsuite>")])
    assert execution(store, again).totals.tests == 5200


def test_a_store_recreated_at_the_same_path_gets_its_cases_again(tmp_path: Path) -> None:
    report = write(tmp_path, "a.xml", PASSING)
    path = tmp_path / "store" / "testledger.db"
    for _ in range(2):  # same URL, new file: nothing remembered about the old store may be trusted
        store = Store(f"sqlite:///{path}")
        assert execution(store, ingest(store, [report])).totals.tests == 2
        store.dispose()
        path.unlink()


def _big_report(cases: int, *, broken: bool = False) -> str:
    body = "".join(
        f'<testcase classname="c{i % 7}" name="t{i}" time="0.0{i % 10}">'
        + (f'<failure message="m{i}" type="AssertionError">trace {i}</failure>' if i % 50 == 0 else "")
        + (f"<system-out>out {i}</system-out>" if i % 9 == 0 else "")
        + "</testcase>"
        for i in range(cases)
    )
    rerun = '<testcase classname="c0" name="t0" time="1"/>'  # t0 failed first: a rerun 11k entries later
    return f"<testsuites><testsuite name='big'>{body}{rerun}</testsuite>" + ("<testcase" if broken else "</testsuites>")


@pytest.fixture
def second_process(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second process on even on a machine with one core, and its start logged for `_children`."""
    monkeypatch.setattr(parse_process, "available", lambda: True)
    caplog.set_level(logging.INFO, logger=parse_process.__name__)


def _cases(run: Any) -> list[dict[str, Any]]:
    """A stored run's cases as compared across ingest paths (the runtime id differs by design)."""
    return [c.model_dump(exclude={"runtime_id"}) for c in run.cases or []]


def _children(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The process ids of the parse processes that ran, checked to be other processes than this one."""
    pids = [int(r.getMessage().split()[3]) for r in caplog.records
            if r.name == parse_process.__name__ and " started for " in r.getMessage()]
    assert pids and os.getpid() not in pids, "no second process parsed the reports"
    return pids


def test_a_second_parsing_process_stores_the_same_as_parsing_here(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    report = write(tmp_path, "big.xml", _big_report(11_000))
    here = execution(store, ingest(store, [report]))
    assert not [r for r in caplog.records if r.name == parse_process.__name__]  # parsed here
    there = execution(store, ingest(store, [report], parse_process_min_bytes=0))
    assert len(_children(caplog)) == 1
    assert there.totals == here.totals
    assert (here.totals.tests, here.totals.flaky) == (11_000, 1)
    assert _cases(there) == _cases(here)


def test_known_tests_through_the_second_process_store_the_same_as_parsing_here(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    """The daily case: the same tests again. On SQLite the parse process is given the store's case ids and
    sends results only; what is stored is what parsing here stores."""
    report = write(tmp_path, "big.xml", _big_report(11_000))
    ingest(store, [report])  # the tests are known from now on
    cases_before = count(store, Case)
    here = execution(store, ingest(store, [report]))
    there = execution(store, ingest(store, [report], parse_process_min_bytes=0))
    assert len(_children(caplog)) == 1 and count(store, Case) == cases_before
    assert there.totals == here.totals and (there.totals.tests, there.totals.flaky) == (11_000, 1)
    assert _cases(there) == _cases(here)


def test_new_tests_among_known_ones_through_the_second_process_are_stored(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    """Only the tests the store holds are left out of the parse process's case rows: new ones beside them
    are stored, as parsing here stores them."""
    ingest(store, [write(tmp_path, "known.xml", _big_report(6_000))])
    cases_before = count(store, Case)
    new = "".join(f'<testcase classname="n" name="new{i}"/>' for i in range(700))
    suite = "<testsuite name='big'>"
    mixed = write(tmp_path, "mixed.xml", _big_report(6_000).replace(suite, suite + new))
    there = execution(store, ingest(store, [mixed], parse_process_min_bytes=0))
    assert len(_children(caplog)) == 1 and count(store, Case) == cases_before + 700
    here = execution(store, ingest(store, [mixed]))
    assert there.totals == here.totals and there.totals.tests == 6_700
    assert _cases(there) == _cases(here)


def test_the_store_case_ids_a_large_ingest_reads_are_bounded(tmp_path: Path) -> None:
    # SQLite only: there the writer's lock keeps them true for the whole ingest.
    store = Store(f"sqlite:///{tmp_path / 'ids.db'}")
    try:
        ingest(store, [write(tmp_path, "many.xml", _big_report(300))])
        with store.write() as db:
            ids = set(db.scalars(select(Case.id)))
            assert len(ids) == 300  # the report's tests
            assert stored_case_ids(db.connection(), limit=len(ids)) == frozenset(ids)
            assert stored_case_ids(db.connection(), limit=len(ids) - 1) == frozenset()  # too many: ask per batch
    finally:
        store.dispose()


def test_a_parse_error_in_the_second_process_stores_nothing(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    good = write(tmp_path, "a_good.xml", PASSING)
    broken = write(tmp_path, "b_broken.xml", _big_report(11_000, broken=True))
    with pytest.raises(Invalid, match=r"b_broken\.xml:\d+: .*nothing was stored"):
        ingest(store, [good, broken], parse_process_min_bytes=0)
    assert count(store, Run) == 0 and count(store, CaseResult) == 0
    key = ingest(store, [broken, good], partial=True, parse_process_min_bytes=0)
    assert execution(store, key).totals.tests == 2
    assert len(_children(caplog)) == 2


def test_second_process_resends_cases_of_a_report_that_was_rolled_back(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    # Both reports hold the same 5,200 tests; the first breaks after a full batch was written, and its
    # savepoint takes those new cases away: the second must send them again.
    cases = "".join(f'<testcase classname="c" name="t{i}"/>' for i in range(5200))
    broken = write(tmp_path, "a_broken.xml", f"<testsuite>{cases}<testcase>")
    good = write(tmp_path, "b_good.xml", f"<testsuite>{cases}</testsuite>")
    (tmp_path / "again").mkdir()
    copy = write(tmp_path / "again", "b_good.xml", f"<testsuite>{cases}</testsuite>")
    with store.write() as db:
        outcome = ingest_files(db, workspace="WKS", sources=[broken, good, copy],
                               options=options(max_report_bytes=1 << 24, partial=True, parse_process_min_bytes=0))
    assert [(f.error is not None, f.duplicate, f.cases) for f in outcome.files] == [
        (True, False, 0), (False, False, 5200), (False, True, 0),
    ]
    assert execution(store, outcome.run_key).totals.tests == 5200
    assert len(_children(caplog)) == 1


def _ingest_early(
    store: Store, early: Sequence[Path], sources: Sequence[Path], *, wait: float, max_bytes: int = 1 << 24, **kw: Any,
) -> str:
    """Ingest `sources` as `testledger ingest` does: a parse process started on `early` before the run exists."""
    process = parse_process.ParseProcess(early, max_bytes=max_bytes)
    time.sleep(wait)  # the command imports, opens the store and creates the run meanwhile
    try:
        with store.write() as db:
            return ingest_files(db, workspace="WKS", sources=sources, early_parse=process,
                                options=options(max_report_bytes=max_bytes, parse_process_min_bytes=0, **kw)).run_key
    finally:
        process.close()


def _read_ahead(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [int(r.getMessage().split()[-3]) for r in caplog.records if r.getMessage().endswith("case(s) ahead")]


@pytest.mark.parametrize("wait", [0.0, 1.5], ids=["job-at-once", "job-later"])
def test_a_parse_process_started_before_the_run_stores_the_same(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture, wait: float,
) -> None:
    report = write(tmp_path, "big.xml", _big_report(11_000))
    here = execution(store, ingest(store, [report]))
    there = execution(store, _ingest_early(store, [report], [report], wait=wait))
    assert len(_children(caplog)) == 1
    if wait:  # the whole report was parsed before the job came: 11,000 cases and the rerun
        assert _read_ahead(caplog) == [11_001]
    assert there.totals == here.totals and (here.totals.tests, here.totals.flaky) == (11_000, 1)
    assert _cases(there) == _cases(here)


def test_a_parse_process_reads_ahead_a_bounded_number_of_cases(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    cases = parse_process.READ_AHEAD + 5_000
    report = write(tmp_path, "large.xml", "<testsuite>" + "".join(
        f'<testcase classname="c" name="t{i}"/>' for i in range(cases)) + "</testsuite>")
    key = _ingest_early(store, [report], [report], wait=3.0)
    assert _read_ahead(caplog) == [parse_process.READ_AHEAD]  # then it waited for the job
    assert execution(store, key).totals.tests == cases


def test_a_parse_process_reads_ahead_a_bounded_amount_of_text(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    """Few cases with long outputs: the text held, not the count of cases, stops the reading."""
    per_case = 200_000
    report = write(tmp_path, "loud.xml", "<testsuite>" + "".join(
        f'<testcase classname="c" name="t{i}"><system-out>{"x" * per_case}</system-out></testcase>'
        for i in range(120)) + "</testsuite>")
    key = _ingest_early(store, [report], [report], wait=3.0, max_bytes=1 << 26)
    assert _read_ahead(caplog) == [parse_process.READ_AHEAD_CHARS // per_case]
    assert execution(store, key).totals.tests == 120


def test_a_parse_error_read_ahead_is_reported_in_its_turn(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    broken = write(tmp_path, "a_broken.xml", _big_report(200, broken=True))
    good = write(tmp_path, "b_good.xml", PASSING)
    with pytest.raises(Invalid) as here:
        ingest(store, [broken, good])
    with pytest.raises(Invalid) as there:
        _ingest_early(store, [broken, good], [broken, good], wait=1.0)
    assert str(there.value) == str(here.value) and "a_broken.xml" in str(there.value)
    assert count(store, Run) == 0 and count(store, CaseResult) == 0
    key = _ingest_early(store, [broken, good], [broken, good], wait=1.0, partial=True)
    assert execution(store, key).totals.tests == 2
    not_a_report = write(tmp_path, "notes.xml", "<html><body>not a test report</body></html>")
    with pytest.raises(Invalid) as refused:
        _ingest_early(store, [not_a_report], [not_a_report], wait=1.0)
    assert "notes.xml" in str(refused.value) and "nothing was stored" in str(refused.value)


def test_a_parse_process_reads_ahead_across_a_folder_of_reports(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    """A CI job's folder of small reports (one per test class), one of them broken: read ahead in turn."""
    folder = tmp_path / "surefire"
    folder.mkdir()
    reports = [write(folder, f"TEST-{n:02}.xml", "<testsuite>" + "".join(
        f'<testcase classname="pkg.C{n}" name="t{i}" time="0.01"/>' for i in range(50)) + "</testsuite>")
        for n in range(30)]
    reports[10] = write(folder, "TEST-10.xml", _big_report(200, broken=True))
    here = ingest(store, reports, partial=True, max_report_bytes=1 << 24)
    there = _ingest_early(store, reports, reports, wait=1.5, partial=True)
    assert _read_ahead(caplog)[0] >= 29 * 50  # every report read before the job came
    with store.read() as db:
        stored = {key: sorted(tuple(row) for row in db.execute(
            select(ReportFile.name, ReportFile.cases).join(Run, Run.id == ReportFile.run_id).where(Run.key == key)))
            for key in (here, there)}
    assert stored[here] == stored[there] and len(stored[there]) == 29  # all but the broken one
    assert execution(store, there).totals == execution(store, here).totals
    assert execution(store, there).totals.tests == 29 * 50


def test_a_parse_process_started_on_other_files_drops_what_it_read(
    store: Store, tmp_path: Path, second_process: None, caplog: pytest.LogCaptureFixture,
) -> None:
    other = write(tmp_path, "other.xml", _big_report(300))
    key = _ingest_early(store, [other], [write(tmp_path, "passing.xml", PASSING)], wait=1.0)
    assert _read_ahead(caplog) == [0]
    assert execution(store, key).totals.tests == 2


def test_a_parse_process_that_gets_no_job_ends(tmp_path: Path, second_process: None) -> None:
    process = parse_process.ParseProcess([write(tmp_path, "big.xml", _big_report(11_000))], max_bytes=1 << 24)
    pid = process.child.pid
    assert pid is not None and psutil.pid_exists(pid)
    process.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


class _Upload(io.RawIOBase):
    """An upload read the way a server hands it over: in pieces, with the largest piece asked for kept."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self.largest_read = max(self.largest_read, size if size is not None and size >= 0 else 1 << 62)
        return self._data.read(size)


def test_a_stream_is_ingested_in_pieces_under_its_own_name(store: Store, tmp_path: Path) -> None:
    upload = _Upload(gzip.compress(FAILING.encode()))
    key = ingest(store, [ReportStream(name="../../uploads/api.xml.gz", stream=upload)])
    e = execution(store, key)
    assert e.totals.tests == 2
    assert upload.largest_read <= 1 << 20  # never read whole
    with store.read() as db:
        assert db.scalars(select(ReportFile.name)).all() == ["api.xml.gz"]
    again = ReportStream(name="api.xml.gz", stream=io.BytesIO(gzip.compress(FAILING.encode())))
    with store.write() as db:
        outcome = ingest_files(db, workspace="WKS", sources=[again], options=options(finish=False))
    assert [f.duplicate for f in outcome.files] == [False]  # another run: not a duplicate


def test_a_stream_larger_than_the_limit_is_refused_and_nothing_stored(store: Store) -> None:
    big = ReportStream(name="big.xml", stream=io.BytesIO(b" " * 5000 + PASSING.encode()))
    with pytest.raises(Invalid, match=r"report 'big\.xml' is larger than the 4,000-byte limit"):
        ingest(store, [big], max_report_bytes=4000)
    assert count(store, Run) == 0


def test_a_parse_error_in_a_stream_names_the_upload(store: Store) -> None:
    with pytest.raises(Invalid, match=r"^broken\.xml:\d+: .*nothing was stored"):
        ingest(store, [ReportStream(name="broken.xml", stream=io.BytesIO(b"<testsuite><testcase>"))])


def _reruns_report(tests: int, *, broken: bool = False) -> str:
    """`tests` failures, then the same tests again passing: each rerun comes after its first attempt
    was written (the write batch is 5,000), so every one is merged into a stored row."""
    failures = "".join(f'<testcase classname="c" name="t{i}" time="1"><failure message="m{i}"/></testcase>'
                       for i in range(tests))
    passes = "".join(f'<testcase classname="c" name="t{i}" time="2"/>' for i in range(tests))
    return f"<testsuite>{failures}{passes}" + ("<testcase>" if broken else "</testsuite>")


@pytest.mark.parametrize("offload", [None, 0], ids=["here", "second-process"])
def test_reruns_of_stored_results_are_merged_in_batches(store: Store, tmp_path: Path, offload: int | None) -> None:
    report = write(tmp_path, "reruns.xml", _reruns_report(12_000))
    e = execution(store, ingest(store, [report], max_report_bytes=1 << 24, parse_process_min_bytes=offload))
    assert (e.totals.tests, e.totals.passed, e.totals.failed, e.totals.flaky) == (12_000, 12_000, 0, 12_000)
    assert {(c.status, c.attempts, c.flaky, c.duration_ms) for c in e.cases or []} == {("PASSED", 2, True, 3000)}
    with store.read() as db:
        case = runs.get_case(db, workspace="WKS", key=e.execution_id, index=11_999)
    assert [(a.status, a.message) for a in case.attempt_details] == [("FAILED", "m11999"), ("PASSED", None)]


def test_stored_reruns_of_a_report_that_fails_are_rolled_back_with_it(store: Store, tmp_path: Path) -> None:
    broken = write(tmp_path, "a_broken.xml", _reruns_report(6000, broken=True))
    good = write(tmp_path, "b_good.xml", PASSING)
    e = execution(store, ingest(store, [broken, good], max_report_bytes=1 << 24, partial=True))
    assert (e.totals.tests, e.totals.passed, e.totals.flaky) == (2, 1, 0)


def test_a_test_rerun_many_times_keeps_its_first_attempts_and_counts_all(store: Store, tmp_path: Path) -> None:
    fails = '<testcase classname="c" name="wobbly" time="1"><failure message="no"/></testcase>' * 60
    filler = "".join(f'<testcase classname="c" name="t{i}"/>' for i in range(6000))
    doc = f'<testsuite>{fails}{filler}<testcase classname="c" name="wobbly" time="1"/></testsuite>'
    e = execution(store, ingest(store, [write(tmp_path, "many.xml", doc)], max_report_bytes=1 << 24))
    with store.read() as db:
        case = runs.get_case(db, workspace="WKS", key=e.execution_id, index=0)
    assert (case.status, case.attempts, case.flaky, case.duration_ms) == ("PASSED", 61, True, 61_000)
    assert len(case.attempt_details) == MAX_ATTEMPTS_KEPT
    assert (e.totals.tests, e.totals.failed, e.totals.flaky) == (6001, 0, 1)
