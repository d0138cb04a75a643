"""The fold off the ingest path, on both stores: a run that ends is only queued; the next analytics answer
(or `testledger analytics fold`) folds the queue first, in batches, with the same rollups as folding each
run when it ended; a run deleted while queued is dropped; racing folders never fold a run twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from history_factory import History, Outcome, case_id_of
from sqlalchemy import text

from testledger.analytics import fold
from testledger.analytics.fold import catch_up, pending
from testledger.db.engine import Store
from testledger.services.analytics.clusters import failure_clusters
from testledger.services.analytics.flaky import flaky_tests
from testledger.services.analytics.slow import slow_tests
from testledger.services.runs import delete_runs

ROLLUPS = ("test_days", "case_failures", "failure_clusters", "flaky_evidence", "test_branch_states")


def _queued(store: Store) -> int:
    with store.read() as db:
        return pending(db)


def _rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.read() as db:
        return sorted(tuple(str(v) for v in row) for row in db.execute(text(sql)))


def _rollups(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup row, with clusters named by signature (their ids depend on when they were made)."""
    return {
        "days": _rows(store, "SELECT * FROM test_days"),
        "failures": _rows(store, "SELECT f.result_id, f.run_id, f.case_id, c.signature, f.category, f.created_at, "
                                 "f.outage FROM case_failures f JOIN failure_clusters c ON c.id = f.cluster_id"),
        "clusters": _rows(store, "SELECT signature, error_type, pattern, first_seen, last_seen FROM failure_clusters"),
        "evidence": _rows(store, "SELECT case_id, signal, run_id, other_run_id, revision, branch, pipeline_id, "
                                 "flip_rate, created_at FROM flaky_evidence"),
        "states": _rows(store, "SELECT * FROM test_branch_states"),
    }


def _history(h: History) -> None:
    """Runs that feed every rollup: flips on one branch, re-runs of one revision, a retry, an outage, failures
    of two clusters, durations across days, a second branch."""
    boom = "expected 200 but got 503 from /api/orders/17"
    for i in range(12):
        flip = "failed" if i % 2 else "passed"
        h.run([Outcome("test_flip", flip, message=boom, error_type="AssertionError"),
               Outcome("test_ok", duration_ms=10.0 + i),
               Outcome("test_rev", "failed" if i in (3, 4) else "passed", message="timeout after 30 s",
                       error_type="TimeoutError")],
              revision=f"r{i // 2}", days_ago=(12 - i) / 4)
    h.run([Outcome("test_ok", retried=True), Outcome("test_flip")], revision="r9", branch="release")
    h.run([Outcome(f"test_{k}", "error", message=f"connection refused: 10.0.0.{k}") for k in range(6)],
          revision="r9")


def _refold_in_batches(store: Store, monkeypatch: pytest.MonkeyPatch, batch_runs: int, runs: int = 14) -> None:
    """Empty the rollups, queue every finished run again in the order they ended, fold in batches."""
    with store.write() as db:
        for table in ROLLUPS:
            db.execute(text(f"DELETE FROM {table}"))
        db.execute(text("INSERT INTO analytics_queue (run_id) SELECT id FROM test_runs ORDER BY completed_at"))
    monkeypatch.setattr(fold, "BATCH_RUNS", batch_runs)
    with store.read() as db:
        done = catch_up(db)
    assert done.runs == runs and done.batches == -(-runs // batch_runs)


@pytest.mark.parametrize("batch_runs", [500, 3])
def test_folding_queued_runs_in_batches_gives_the_rollups_of_folding_each_as_it_ended(
    store: Store, monkeypatch: pytest.MonkeyPatch, batch_runs: int,
) -> None:
    h = History(store)
    monkeypatch.setattr(History, "run", _folding_each(History.run))
    _history(h)
    one_at_a_time = _rollups(store)
    assert all(one_at_a_time.values()), "the history feeds every rollup"
    _refold_in_batches(store, monkeypatch, batch_runs)
    assert _rollups(store) == one_at_a_time


def _folding_each(run: Callable[..., str]) -> Callable[..., str]:
    """`History.run` followed by an analytics read, i.e. the old fold at each run's end."""
    def run_and_fold(self: History, *args: Any, **kwargs: Any) -> str:
        key = run(self, *args, **kwargs)
        with self.store.read() as db:
            assert catch_up(db).runs == 1
        return key
    return run_and_fold


def test_a_finished_run_is_only_queued_and_the_next_answer_folds_it(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_pay", duration_ms=40.0), Outcome("test_login", "failed", message="expected 1, got 2")])
    assert _queued(store) == 1
    assert _rows(store, "SELECT * FROM test_days") == []  # nothing folded at the run's end
    with store.read() as db:
        slowest = slow_tests(db, workspace="WKS")
    assert [t.test for t in slowest.tests] == ["app.Tests::test_pay", "app.Tests::test_login"]
    assert _queued(store) == 0
    with store.read() as db:  # folded once: a second answer finds nothing queued and counts the same
        assert failure_clusters(db, workspace="WKS").clusters[0].count == 1
        assert slow_tests(db, workspace="WKS").tests[0].results == 1


def test_a_run_deleted_while_queued_is_dropped_from_the_queue(store: Store) -> None:
    h = History(store)
    kept = h.run([Outcome("test_a", "failed", message="boom")], revision="x")
    gone = h.run([Outcome("test_a"), Outcome("test_b", "failed", message="other boom")], revision="x")
    with store.write() as db:
        assert delete_runs(db, workspace="WKS", keys=[gone]) == [gone]
    with store.read() as db:
        report = flaky_tests(db, workspace="WKS")
        clusters = failure_clusters(db, workspace="WKS").clusters
    # The deleted run's pass of test_a on revision x is no evidence, and its failure forms no cluster.
    assert report.tests == [] and [c.pattern for c in clusters] == ["boom"]
    assert _queued(store) == 0 and kept


def test_a_folded_run_that_is_deleted_leaves_the_rollups_as_if_it_had_never_been_recorded(
    store: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = History(store)
    _history(h)
    with store.read() as db:
        assert catch_up(db).runs == 14
    gone = [h.keys[3], h.keys[-1]]  # test_rev's first failure and the outage, the only run of its cluster
    with store.write() as db:
        assert delete_runs(db, workspace="WKS", keys=gone) == gone
    after = _rollups(store)
    _refold_in_batches(store, monkeypatch, 500, runs=12)  # the rollups of the 12 runs that stay, from nothing
    refolded = _rollups(store)
    for part in ("days", "failures", "clusters"):
        assert after[part] == refolded[part], part
    assert "connection refused" not in str(after["clusters"])
    kept = [str(run_id) for (run_id,) in _rows(store, "SELECT id FROM test_runs")]
    assert len(kept) == 12 and after["evidence"] and all(
        row[2] in kept and row[3] in (*kept, "None") for row in after["evidence"])


def test_deleting_a_run_takes_its_slowest_result_out_of_the_slow_tests(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_x", duration_ms=10.0)])
    spike = h.run([Outcome("test_x", duration_ms=5000.0)])
    with store.read() as db:
        assert slow_tests(db, workspace="WKS").tests[0].max_ms == 5000.0
    with store.write() as db:
        delete_runs(db, workspace="WKS", keys=[spike])
    with store.read() as db:
        test = slow_tests(db, workspace="WKS").tests[0]
    assert (test.results, test.max_ms, test.p95_ms) == (1, 10.0, 10.0)


def test_racing_folders_fold_each_run_once(store: Store) -> None:
    h = History(store)
    for _ in range(3):
        h.run([Outcome("test_a", duration_ms=5.0), Outcome("test_b", "failed", message="boom")], revision="r")
    holding, release = threading.Event(), threading.Event()
    answers: list[Any] = []

    def first() -> None:  # folds inside a write transaction and holds it open
        with store.write() as db:
            assert catch_up(db).runs == 3
            holding.set()
            release.wait(10)

    def second() -> None:  # an answer asked meanwhile waits for the first fold, then folds nothing
        holding.wait(10)
        with store.read() as db:
            answers.append(slow_tests(db, workspace="WKS"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    holding.wait(10)
    threads[1].join(0.5)
    assert threads[1].is_alive(), "the second folder waits for the first"
    release.set()
    for t in threads:
        t.join(20)
    assert [t.results for t in answers[0].tests] == [3, 3]
    assert _rows(store, "SELECT count(*), count(DISTINCT result_id) FROM case_failures") == [("3", "3")]


def test_analytics_fold_command_folds_the_queue(store: Store, cli: Callable[..., Any]) -> None:
    h = History(store)
    h.run([Outcome("test_a")])
    h.run([Outcome("test_a", "failed", message="boom")])
    out = cli("analytics", "fold", "--json")
    assert out.code == 0, out.stderr
    assert {k: v for k, v in json.loads(out.stdout).items() if k != "seconds"} == {"runs": 2, "batches": 1,
                                                                                   "pending": 0}
    again = cli("analytics", "fold")
    assert again.code == 0 and again.stdout.startswith("Folded 0 queued runs in 0 batches")
    assert _rows(store, f"SELECT results, failed FROM test_days WHERE case_id = {case_id_of('test_a')}") == [
        ("2", "1")]
    h.run([Outcome("test_a")])
    assert cli("analytics", "fold").stdout.startswith("Folded 1 queued run in 1 batch (")
