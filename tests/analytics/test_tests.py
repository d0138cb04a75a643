"""Quarantine, renamed tests, slow tests and a test's history from constructed histories on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from history_factory import ENVS, History, Outcome, case, case_id_of

from testledger.db import records as runs_records
from testledger.db.engine import Store
from testledger.db.rows import NewResult
from testledger.errors import Conflict, Invalid, NotFound
from testledger.services.analytics import slow
from testledger.services.analytics.flaky import flaky_tests
from testledger.services.analytics.health import pipeline_health
from testledger.services.analytics.history import test_history as history_of
from testledger.services.analytics.identity import link_renamed_test
from testledger.services.analytics.quarantine import add_quarantine, list_quarantines, remove_quarantine
from testledger.services.analytics.slow import percentile, slow_tests


def test_quarantine_keeps_recording_and_health_can_leave_it_out(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_flaky", "failed"), Outcome("test_ok")])
    with store.write() as db:
        q = add_quarantine(db, workspace="WKS", test="app.Tests.test_flaky", owner="qa@example.com",
                           reason="flaky on CI", actor="alice", expires_at=datetime.now(UTC) + timedelta(days=14),
                           pipeline="api")
    assert (q.test, q.owner, q.active, q.pipeline_key) == ("app.Tests::test_flaky", "qa@example.com", True, "api")
    h.run([Outcome("test_flaky", "failed"), Outcome("test_ok")])
    h.run([Outcome("test_flaky"), Outcome("test_ok", "failed")])
    with store.read() as db:
        plain = pipeline_health(db, workspace="WKS").groups[0]
        excluded = pipeline_health(db, workspace="WKS", exclude_quarantined=True).groups[0]
        history = history_of(db, workspace="WKS", test="app.Tests::test_flaky")
    assert (plain.passed, plain.failed) == (0, 3)
    assert (excluded.passed, excluded.failed) == (2, 1)  # the run test_ok failed stays red
    assert history.quarantined and len(history.results) == 3
    with store.write() as db:
        remove_quarantine(db, workspace="WKS", test="app.Tests::test_flaky")
        with pytest.raises(NotFound, match="is not quarantined"):
            remove_quarantine(db, workspace="WKS", test="app.Tests::test_flaky")
        assert list_quarantines(db, workspace="WKS") == []


def test_an_expired_quarantine_lifts_itself(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_a", "failed")])
    with store.write() as db:
        add_quarantine(db, workspace="WKS", test="app.Tests::test_a", owner="qa", reason="r", actor="alice",
                       expires_at=datetime.now(UTC) + timedelta(hours=1))
        with pytest.raises(Invalid, match="must be in the future"):
            add_quarantine(db, workspace="WKS", test="app.Tests::test_a", owner="qa", reason="r", actor="alice",
                           expires_at=datetime.now(UTC) - timedelta(hours=1))
    later = datetime.now(UTC) + timedelta(hours=2)
    with store.read() as db:
        assert [q.active for q in list_quarantines(db, workspace="WKS")] == [True]
        assert list_quarantines(db, workspace="WKS", now=later) == []
        assert [q.active for q in list_quarantines(db, workspace="WKS", include_expired=True, now=later)] == [False]


def test_a_renamed_test_keeps_its_history_and_flakiness(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_login", "failed")], revision="abc", days_ago=1)
    h.run([Outcome("test_login")], revision="abc", days_ago=1)
    h.run([Outcome("test_sign_in")], revision="def")
    with store.write() as db:
        out = link_renamed_test(db, workspace="WKS", old="app.Tests::test_login", new="app.Tests::test_sign_in",
                                actor="alice")
        with pytest.raises(Conflict, match="already an old name"):
            link_renamed_test(db, workspace="WKS", old="app.Tests::test_sign_in", new="app.Tests::test_login",
                              actor="alice")
    assert out.new.case_id == case_id_of("test_sign_in")
    with store.read() as db:
        history = history_of(db, workspace="WKS", test="app.Tests::test_login")
        flaky = flaky_tests(db, workspace="WKS").tests
    assert history.test == "app.Tests::test_sign_in" and history.aliases == ["app.Tests::test_login"]
    assert [(r.name.rsplit("::")[1], r.status, r.revision) for r in history.results] == [
        ("test_sign_in", "PASSED", "def"), ("test_login", "PASSED", "abc"), ("test_login", "FAILED", "abc")]
    assert [t.test for t in flaky] == ["app.Tests::test_sign_in"]


def test_tests_are_named_classname_dot_or_colons_and_ambiguity_is_an_error(store: Store) -> None:
    h = History(store)
    h.run([Outcome("test_x"), Outcome("test_x", classname="other.Tests")])
    with store.read() as db:
        assert history_of(db, workspace="WKS", test="other.Tests.test_x").case_id == case_id_of("test_x", "other.Tests")
        with pytest.raises(Invalid, match="names several tests"):
            history_of(db, workspace="WKS", test="test_x")
        with pytest.raises(NotFound, match=r"no test named 'app\.Tests::nope'"):
            history_of(db, workspace="WKS", test="app.Tests::nope")


def test_slow_tests_by_p95_and_a_duration_regression(store: Store) -> None:
    h = History(store)
    for day in range(1, 6):
        h.run([Outcome("test_db", duration_ms=400.0 + day), Outcome("test_tiny", duration_ms=2.0),
               Outcome("test_big", duration_ms=3000.0), Outcome("test_steady", duration_ms=900.0)], days_ago=day)
    h.run([Outcome("test_db", duration_ms=4100.0), Outcome("test_tiny", duration_ms=40.0),
           Outcome("test_big", duration_ms=3100.0), Outcome("test_steady", duration_ms=950.0)])
    with store.read() as db:
        report = slow_tests(db, workspace="WKS", days=7, limit=2)
        one = slow_tests(db, workspace="WKS", pipeline="api", days=7, limit=1)
    assert [t.test for t in report.tests] == ["app.Tests::test_db", "app.Tests::test_big"]
    db_test = report.tests[0]
    assert db_test.max_ms == 4100.0 and db_test.results == 6 and 2900 <= db_test.p95_ms <= 4100
    assert 360 <= db_test.p50_ms <= 480
    # test_tiny is 20x slower, but under the floor; test_big is slower than ever, but not 5x its mean.
    assert [(r.test, r.recent_max_ms) for r in report.regressions] == [("app.Tests::test_db", 4100.0)]
    assert [t.test for t in one.tests] == ["app.Tests::test_db"]


def test_slow_tests_of_one_environment_or_branch(store: Store) -> None:
    h = History(store)
    for day in range(1, 4):
        h.run([Outcome("test_deploy", duration_ms=5000.0 + day), Outcome("test_api", duration_ms=300.0)],
              env="staging", branch="release/2.4", days_ago=day)
        h.run([Outcome("test_deploy", duration_ms=50.0), Outcome("test_api", duration_ms=310.0)],
              env="prod", branch="main", days_ago=day)
    h.run([Outcome("test_deploy", duration_ms=60.0), Outcome("test_api", duration_ms=320.0)], env="prod",
          branch="main", days_ago=1)
    with store.write() as db:  # a run still running is no answer's evidence
        open_run = runs_records.create_run(db, workspace="WKS", actor="t", environment="prod",
                                           allowed_environments=ENVS, pipeline_key="api", branch="main", started=True)
        runs_records.record_results(db, run=open_run, results=[NewResult(idx=0, case=case("test_api"),
                                                                         status="passed", duration_ms=90_000.0)])
    with store.read() as db:
        staging = slow_tests(db, workspace="WKS", environment="staging")
        production = slow_tests(db, workspace="WKS", environment="production")  # the alias of prod
        release = slow_tests(db, workspace="WKS", branch="release/2.4", limit=1)
        main = slow_tests(db, workspace="WKS", branch="main", environment="prod")
        nowhere = slow_tests(db, workspace="WKS", branch="feature/x")
    assert [(t.test, t.results) for t in staging.tests] == [("app.Tests::test_deploy", 3), ("app.Tests::test_api", 3)]
    assert 4000 <= staging.tests[0].p95_ms <= 5003
    assert [(t.test, t.results, t.max_ms) for t in production.tests] == [
        ("app.Tests::test_api", 4, 320.0), ("app.Tests::test_deploy", 4, 60.0)]
    assert [t.test for t in release.tests] == ["app.Tests::test_deploy"]
    assert main.tests == production.tests
    assert nowhere.tests == [] and nowhere.regressions == []


def test_a_filter_matching_every_run_gives_the_unfiltered_figures(store: Store,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    h = History(store)
    for day in range(0, 12):
        h.run([Outcome("test_db", duration_ms=100.0 + 37 * day), Outcome("test_ui", duration_ms=900.0 / (day + 1)),
               Outcome("test_pdf", duration_ms=3.0 * day + 0.5)], env="staging", days_ago=day + 0.01)
    h.run([Outcome("test_db", duration_ms=2100.0), Outcome("test_ui", duration_ms=80.0)], env="staging")
    h.run([Outcome("test_db", duration_ms=20_000.0)], env="staging")  # today: a regression on both paths
    now = datetime.now(UTC)
    with store.read() as db:
        for days in (1, 7, 30):
            rollup = slow_tests(db, workspace="WKS", days=days, now=now)
            raw = slow_tests(db, workspace="WKS", environment="staging", branch="main", days=days, now=now)
            assert raw == rollup and rollup.tests
            with monkeypatch.context() as m:  # a query per run: the chunks add up the same
                m.setattr(slow, "RESULTS_PER_QUERY", 1)
                assert slow_tests(db, workspace="WKS", environment="staging", days=days, now=now) == rollup
        assert [r.test for r in rollup.regressions] == ["app.Tests::test_db"]
    stats = {t.test: (t.results, t.p50_ms, t.p95_ms) for t in rollup.tests}
    assert stats["app.Tests::test_db"][0] == 14 and stats["app.Tests::test_pdf"][0] == 12


def test_a_regression_of_one_environment_is_measured_against_that_environment(store: Store) -> None:
    h = History(store)
    for day in range(2, 20, 3):  # before the 7-day window too: the baseline is 30 days
        h.run([Outcome("test_export", duration_ms=300.0 if day < 7 else 200.0)], env="staging", days_ago=day)
        h.run([Outcome("test_export", duration_ms=4000.0)], env="prod", days_ago=day)
    h.run([Outcome("test_export", duration_ms=3000.0)], env="staging")
    with store.read() as db:
        staging = slow_tests(db, workspace="WKS", environment="staging")
        prod = slow_tests(db, workspace="WKS", environment="prod")
        everywhere = slow_tests(db, workspace="WKS")
    assert [(r.test, r.recent_max_ms, r.baseline_mean_ms, r.baseline_max_ms) for r in staging.regressions] == [
        ("app.Tests::test_export", 3000.0, 233.3, 300.0)]
    assert prod.regressions == [] and everywhere.regressions == []  # 3 s is no news next to prod's 4 s


def test_percentiles_from_histograms_stay_within_their_bucket() -> None:
    from testledger.db.analytics_tables import DURATION_BUCKETS

    hist = [0] * DURATION_BUCKETS
    hist[20] = 100  # [512, 724) ms
    assert 512 <= percentile(hist, 0.5, 700.0) <= 700.0
    assert percentile(hist, 0.95, 600.0) <= 600.0
    assert percentile([0] * DURATION_BUCKETS, 0.95, None) == 0.0
