"""Flaky tests from three signals, each kept as evidence when a finished run is folded: pass and fail on one revision,
pass on a retry within a run, and a flip rate on one branch in alarm. Outage runs never count."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger.analytics.fold import catch_up
from testledger.analytics.rollup import flip_rate
from testledger.db.analytics_tables import FlakyEvidence, TestBranchState
from testledger.db.tables import Run
from testledger.services.analytics import scope
from testledger.services.analytics.quarantine import quarantined_ids
from testledger.services.analytics.schemas import FlakyReport, FlakyTest

SHOWN_RUNS = 5


def flaky_tests(
    db: Session, *, workspace: str, pipeline: str | None = None, branch: str | None = None, days: int = 14,
    limit: int = 50, now: datetime | None = None,
) -> FlakyReport:
    """Tests with flakiness evidence in the window, highest score first."""
    catch_up(db)  # every queued finished run folded first: the answer is never stale
    ws = scope.workspace_id(db, workspace)
    since = scope.window_start(days, now)
    query = (select(FlakyEvidence.case_id, FlakyEvidence.signal, FlakyEvidence.run_id, FlakyEvidence.created_at)
             .where(FlakyEvidence.workspace_id == ws, FlakyEvidence.created_at >= since)
             .order_by(FlakyEvidence.created_at))
    if pipeline is not None:
        query = query.where(FlakyEvidence.pipeline_id == scope.pipeline_id(db, ws, pipeline))
    if branch is not None:
        query = query.where(FlakyEvidence.branch == branch)
    aliases = scope.alias_map(db, ws)
    tests: dict[int, dict[str, Any]] = defaultdict(lambda: {"revision": set(), "retry": set(), "flip": 0, "runs": []})
    for case_id, signal, run_id, created in db.execute(query):
        t = tests[aliases.get(case_id, case_id)]
        if signal == "flip":
            t["flip"] += 1
        else:
            t[signal].add(run_id)
        t.setdefault("first", created)
        t["last"] = created
        t["runs"].append(run_id)
    rates = _alarm_rates(db, ws, list(tests), branch)
    quarantined = quarantined_ids(db, ws)
    keys = _run_keys(db, {r for t in tests.values() for r in t["runs"][-SHOWN_RUNS:]})
    names = scope.test_names(db, tests)
    out = [
        FlakyTest(
            case_id=c, test=names.get(c, str(c)), score=score(len(t["revision"]), len(t["retry"]), rates.get(c)),
            same_revision=len(t["revision"]), retries=len(t["retry"]), flip_rate=rates.get(c), flip_alarms=t["flip"],
            first_seen=t["first"], last_seen=t["last"], quarantined=c in quarantined,
            runs=[keys[r] for r in dict.fromkeys(reversed(t["runs"])) if r in keys][:SHOWN_RUNS],
        )
        for c, t in tests.items()
    ]
    out.sort(key=lambda f: (-f.score, -f.last_seen.timestamp()))
    return FlakyReport(since=since, tests=out[:limit])


def score(same_revision: int, retries: int, flip: float | None) -> float:
    """1 - the chance that every signal is a coincidence: each same-revision run or retry halves it, and an
    alarmed flip rate leaves (1 - rate) of it."""
    doubt = 0.5 ** same_revision * 0.6 ** retries * (1 - flip if flip else 1.0)
    return round(1 - doubt, 3)


def _alarm_rates(db: Session, ws: int, case_ids: list[int], branch: str | None) -> dict[int, float]:
    rates: dict[int, float] = {}
    for start in range(0, len(case_ids), 500):
        query = select(TestBranchState.case_id, TestBranchState.recent).where(
            TestBranchState.workspace_id == ws, TestBranchState.alarm.is_(True),
            TestBranchState.case_id.in_(case_ids[start:start + 500]))
        if branch is not None:
            query = query.where(TestBranchState.branch == branch)
        for case_id, recent in db.execute(query):
            rates[int(case_id)] = max(rates.get(int(case_id), 0.0), round(flip_rate(recent), 3))
    return rates


def _run_keys(db: Session, run_ids: set[Any]) -> dict[Any, str]:
    ids = list(run_ids)
    keys: dict[Any, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        keys.update((r.id, r.key) for r in db.execute(select(Run.id, Run.key).where(Run.id.in_(chunk))))
    return keys
