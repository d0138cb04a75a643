"""Flaky tests from constructed histories on both stores: each signal, a broken test and an outage run."""

from __future__ import annotations

from history_factory import History, Outcome, case_id_of

from testledger.analytics.rollup import FLIP_MIN_SAMPLES
from testledger.db.engine import Store
from testledger.services.analytics.flaky import flaky_tests


def _steady(h: History, n: int, **kw: object) -> None:
    for i in range(n):
        h.run([Outcome("test_ok"), Outcome("test_other")], revision=f"r{i}", **kw)  # type: ignore[arg-type]


def flaky(store: Store, **kw: object) -> dict[str, object]:
    with store.read() as db:
        report = flaky_tests(db, workspace="WKS", **kw)  # type: ignore[arg-type]
    return {t.test: t for t in report.tests}


def test_pass_and_fail_on_one_revision_is_flaky(store: Store) -> None:
    h = History(store)
    first = h.run([Outcome("test_login", "failed", message="expected 200"), Outcome("test_ok")], revision="abc")
    second = h.run([Outcome("test_login"), Outcome("test_ok")], revision="abc")
    h.run([Outcome("test_login"), Outcome("test_ok")], revision="def")
    found = flaky(store)
    assert list(found) == ["app.Tests::test_login"]
    t = found["app.Tests::test_login"]
    assert t.same_revision == 1 and t.retries == 0 and 0 < t.score < 1  # type: ignore[attr-defined]
    assert second in t.runs and t.case_id == case_id_of("test_login")  # type: ignore[attr-defined]
    assert first != second


def test_pass_on_retry_is_flaky(store: Store) -> None:
    h = History(store)
    key = h.run([Outcome("test_upload", retried=True), Outcome("test_ok")], revision="abc")
    t = flaky(store)["app.Tests::test_upload"]
    assert t.retries == 1 and t.same_revision == 0 and t.runs == [key]  # type: ignore[attr-defined]


def test_a_steadily_failing_test_is_broken_not_flaky(store: Store) -> None:
    h = History(store)
    for i in range(FLIP_MIN_SAMPLES + 4):
        h.run([Outcome("test_broken", "failed", message="always"), Outcome("test_ok")], revision=f"r{i}")
    assert flaky(store) == {}


def test_flip_rate_alarms_with_enough_samples_and_recovers_below_the_lower_threshold(store: Store) -> None:
    h = History(store)
    statuses = ["passed", "failed"] * 3
    for i, status in enumerate(statuses):  # fewer samples than the minimum: no alarm yet
        h.run([Outcome("test_flip", status), Outcome("test_ok")], revision=f"r{i}")
    assert flaky(store) == {}
    for i, status in enumerate(["passed", "failed", "passed"]):
        h.run([Outcome("test_flip", status), Outcome("test_ok")], revision=f"s{i}")
    t = flaky(store)["app.Tests::test_flip"]
    assert t.flip_alarms == 1 and t.flip_rate is not None and t.flip_rate >= 0.3  # type: ignore[attr-defined]
    # Passing from now on: the rate sinks under the alarm threshold (5 flips in 19: 0.26), but the alarm holds
    # until it is under the recovery threshold.
    for i in range(14):
        h.run([Outcome("test_flip"), Outcome("test_ok")], revision=f"t{i}")
    assert flaky(store)["app.Tests::test_flip"].flip_rate is not None  # type: ignore[attr-defined]
    for i in range(6):
        h.run([Outcome("test_flip"), Outcome("test_ok")], revision=f"u{i}")
    assert flaky(store)["app.Tests::test_flip"].flip_rate is None  # type: ignore[attr-defined]
    assert flaky(store, branch="other") == {}


def test_an_outage_run_does_not_make_every_test_flaky(store: Store) -> None:
    h = History(store)
    names = [f"test_{n}" for n in range(10)]
    h.run([Outcome(n) for n in names], revision="abc")
    h.run([Outcome(n, "error", message="connection refused") for n in names], revision="abc")
    h.run([Outcome(n) for n in names], revision="abc")
    assert flaky(store) == {}
