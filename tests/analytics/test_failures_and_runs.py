"""Failure clusters, categories, health and run comparison from constructed histories on both stores."""

from __future__ import annotations

import pytest
from history_factory import History, Outcome

from testledger.db.engine import Store
from testledger.errors import Invalid, NotFound
from testledger.services.analytics.clusters import failure_clusters, set_cluster_category
from testledger.services.analytics.compare import compare_runs
from testledger.services.analytics.health import pipeline_health
from testledger.services.analytics.schemas import CaseChange

TRACE = ('Traceback (most recent call last):\n  File "/builds/{n}/tests/test_api.py", line {l}, in test_orders\n'
         '    client.get(url)\n  File "/builds/{n}/app/client.py", line 88, in get\n    raise TimeoutError(msg)\n')


def test_differently_worded_messages_of_one_failure_share_a_cluster(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_orders", "error", error_type="TimeoutError", stack_trace=TRACE.format(n=1, l=10),
                   message="Timeout after 30s waiting for 10.0.0.7:8080 at 2026-11-30T10:00:01Z "
                           "(/tmp/pytest-of-ci/pytest-12/test_orders0/data.json, request 0x7f3a9c0d1e20)")])
    h.run([Outcome("test_orders", "error", error_type="TimeoutError", stack_trace=TRACE.format(n=7, l=12),
                   message="Timeout after 45s waiting for 10.0.3.9:9090 at 2026-12-01T11:20:05Z "
                           "(/tmp/pytest-of-ci/pytest-99/test_orders3/data.json, request 0x55d0c0ffee00)"),
           Outcome("test_refunds", "error", error_type="TimeoutError", stack_trace=TRACE.format(n=7, l=30),
                   message="Timeout after 5s waiting for 10.0.3.1:9090 at 2026-12-01T11:20:09Z "
                           "(/tmp/pytest-of-ci/pytest-99/test_refunds1/data.json, request 0x55d0c0ffee08)")])
    with store.read() as db:
        report = failure_clusters(db, workspace="WKS")
    assert len(report.clusters) == 1
    c = report.clusters[0]
    assert (c.count, c.tests, c.error_type, c.category) == (3, 2, "TimeoutError", "error")
    assert "<n>" in c.pattern and "10.0" not in c.pattern and c.frames == "test_api.py:test_orders < client.py:get"
    assert c.first_seen <= c.last_seen


def test_similar_messages_of_different_failures_stay_apart(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_a", "failed", error_type="KeyError", message="'user_id'"),
           Outcome("test_b", "failed", error_type="KeyError", message="'order_id'"),
           Outcome("test_c", "failed", error_type="ValueError", message="'user_id'")])
    with store.read() as db:
        clusters = failure_clusters(db, workspace="WKS").clusters
    assert sorted((c.error_type, c.pattern) for c in clusters) == [
        ("KeyError", "'order_id'"), ("KeyError", "'user_id'"), ("ValueError", "'user_id'")]


def test_a_new_failure_joins_the_existing_cluster_and_a_category_can_be_overridden(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_a", "failed", error_type="AssertionError", message="expected 3 items, got 2")])
    with store.write() as db:
        first = failure_clusters(db, workspace="WKS").clusters[0]
        set_cluster_category(db, workspace="WKS", cluster=first.id, category="infrastructure")
        with pytest.raises(Invalid, match="unknown category 'network'"):
            set_cluster_category(db, workspace="WKS", cluster=first.id, category="network")
        with pytest.raises(NotFound, match="cluster 999999 not found"):
            set_cluster_category(db, workspace="WKS", cluster=999999, category="error")
    h.run([Outcome("test_b", "failed", error_type="AssertionError", message="expected 5 items, got 4")])
    with store.read() as db:
        report = failure_clusters(db, workspace="WKS")
    [c] = report.clusters
    assert (c.id, c.count, c.tests, c.category, c.category_overridden) == (first.id, 2, 2, "infrastructure", True)
    assert [(d.infrastructure, d.assertion) for d in report.categories] == [(2, 0)]


def test_health_per_pipeline_environment_and_branch(store: Store) -> None:
    h = History(store)
    red_old = h.run([Outcome("t", "failed")], days_ago=10)
    h.run([Outcome("t")], days_ago=3)
    red = h.run([Outcome("t", "failed")], days_ago=2)
    h.run([Outcome("t")], days_ago=1)
    h.run([Outcome("t")], days_ago=0.5)
    h.run([Outcome("t", "failed")], env="staging")
    h.run([Outcome("t")], branch="feature/x", days_ago=0.2)
    with store.read() as db:
        report = pipeline_health(db, workspace="WKS", pipeline="api")
        main = pipeline_health(db, workspace="WKS", environment="ci", branch="main", days=30).groups
    groups = {(g.environment, g.branch): g for g in report.groups}
    g = groups[("ci", "main")]
    assert (g.runs, g.passed, g.failed, g.pass_rate, g.failure_rate) == (4, 3, 1, 0.75, 0.25)
    assert (g.streak, g.streak_outcome) == (2, "passed") and g.last_red and g.last_red.execution_id == red
    assert g.mean_duration_ms is not None and g.p95_duration_ms is not None
    assert groups[("staging", "main")].last_green is None and groups[("staging", "main")].streak_outcome == "failed"
    assert sum(d.runs for d in report.trend) == 6 and len(report.trend) >= 4
    assert [(x.runs, x.failed) for x in main] == [(5, 2)] and red_old != red
    with store.read() as db, pytest.raises(NotFound, match="pipeline 'nope' not found"):
        pipeline_health(db, workspace="WKS", pipeline="nope")


def test_last_green_before_the_window_is_found(store: Store) -> None:
    h = History(store)
    green = h.run([Outcome("t")], days_ago=20)
    h.run([Outcome("t", "failed")], days_ago=1)
    with store.read() as db:
        [g] = pipeline_health(db, workspace="WKS").groups
    assert g.last_green is not None and g.last_green.execution_id == green and g.pass_rate == 0.0


def test_compare_with_the_last_passing_run_on_the_same_branch(store: Store) -> None:
    h = History(store)
    base = h.run([Outcome("t_fix", "passed"), Outcome("t_still", "passed"), Outcome("t_gone"),
                  Outcome("t_slow", duration_ms=100.0), Outcome("t_new_fail")], days_ago=2)
    h.run([Outcome("t_other")], branch="feature/x", days_ago=1.5)
    prev = h.run([Outcome("t_fix", "failed"), Outcome("t_still", "failed"), Outcome("t_gone"),
                  Outcome("t_slow", duration_ms=100.0), Outcome("t_new_fail")], days_ago=1)
    now = h.run([Outcome("t_fix"), Outcome("t_still", "failed", message="still"), Outcome("t_added"),
                 Outcome("t_slow", duration_ms=900.0), Outcome("t_new_fail", "error", message="boom")])
    with store.read() as db:
        auto = compare_runs(db, workspace="WKS", run=now)
        explicit = compare_runs(db, workspace="WKS", run=now, base=prev)
    assert auto.base == base

    def names(changes: list[CaseChange]) -> list[str]:
        return [c.test.rsplit("::", 1)[1] for c in changes]

    assert names(auto.new_failures) == ["t_still", "t_new_fail"] and names(auto.fixed) == []
    assert names(explicit.new_failures) == ["t_new_fail"] and names(explicit.fixed) == ["t_fix"]
    assert names(explicit.still_failing) == ["t_still"] and explicit.still_failing[0].error == "still"
    assert names(explicit.new_tests) == ["t_added"] and names(explicit.removed_tests) == ["t_gone"]
    assert names(explicit.duration_regressions) == ["t_slow"]
    with store.read() as db, pytest.raises(NotFound, match="no earlier passing run"):
        compare_runs(db, workspace="WKS", run=base)
