"""Rollups kept at run completion: per-test daily histograms, failures with their cluster, flaky evidence
and per-branch flip state. One call per finished run (`record_run`), never work per ingested row."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, text, update
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.db.bulk import insert_if_absent
from testledger.db.tables import (
    DURATION_BUCKETS,
    CaseFailure,
    CaseResult,
    FailureCluster,
    FlakyEvidence,
    Run,
    TestBranchState,
)
from testledger.services.analytics.signature import signature_of

#: A run where at least this share of at least `OUTAGE_MIN_TESTS` tests failed is an outage: its
#: failures are clustered but never count as flakiness evidence.
OUTAGE_SHARE = 0.5
OUTAGE_MIN_TESTS = 5
#: Flip rate: the last `FLIP_WINDOW` results of a test on one branch; alarm at `FLIP_ALARM` with at least
#: `FLIP_MIN_SAMPLES` of them, and the alarm clears only below `FLIP_RECOVER` (hysteresis).
FLIP_WINDOW = 20
FLIP_MIN_SAMPLES = 8
FLIP_ALARM = 0.3
FLIP_RECOVER = 0.1
FAILED = ("failed", "error")


def bucket_bounds(k: int) -> tuple[float, float]:
    """The [low, high) milliseconds of histogram bucket k (the last one is open-ended)."""
    if k == 0:
        return 0.0, 1.0
    return 2 ** ((k - 1) / 2), 2 ** (k / 2) if k < DURATION_BUCKETS - 1 else float("inf")


def _bucket_case() -> str:
    whens = " ".join(f"WHEN duration_ms < {bucket_bounds(k)[1]!r} THEN {k}" for k in range(DURATION_BUCKETS - 1))
    return f"CASE WHEN duration_ms IS NULL THEN -1 {whens} ELSE {DURATION_BUCKETS - 1} END"


_H = [f"h{k}" for k in range(DURATION_BUCKETS)]
_DAYS_UPSERT = (
    f"INSERT INTO test_days (day, case_id, workspace_id, pipeline_id, results, passed, failed, flaky, timed, "
    f"duration_sum, duration_max, {', '.join(_H)}) "
    f"SELECT :day, case_id, :ws, :pipeline, count(*), sum(CASE WHEN status = 'passed' THEN 1 ELSE 0 END), "
    f"sum(CASE WHEN status IN ('failed', 'error') THEN 1 ELSE 0 END), sum(CASE WHEN flaky THEN 1 ELSE 0 END), "
    f"count(duration_ms), coalesce(sum(duration_ms), 0), max(duration_ms), "
    + ", ".join(f"sum(CASE WHEN b = {k} THEN 1 ELSE 0 END)" for k in range(DURATION_BUCKETS))
    + f" FROM (SELECT case_id, status, flaky, duration_ms, {_bucket_case()} AS b FROM case_results "
    "WHERE run_id = :run AND parent_idx IS NULL) AS r WHERE true GROUP BY case_id "
    "ON CONFLICT (day, case_id) DO UPDATE SET results = test_days.results + excluded.results, "
    "passed = test_days.passed + excluded.passed, failed = test_days.failed + excluded.failed, "
    "flaky = test_days.flaky + excluded.flaky, timed = test_days.timed + excluded.timed, "
    "duration_sum = test_days.duration_sum + excluded.duration_sum, pipeline_id = excluded.pipeline_id, "
    "duration_max = CASE WHEN test_days.duration_max IS NULL OR excluded.duration_max > test_days.duration_max "
    "THEN excluded.duration_max ELSE test_days.duration_max END, "
    + ", ".join(f"{h} = test_days.{h} + excluded.{h}" for h in _H)
)


def is_outage(tests: int, failed: int) -> bool:
    return tests >= OUTAGE_MIN_TESTS and failed / tests >= OUTAGE_SHARE


def record_run(db: Session, *, run: Run) -> None:
    """Fold a finished run into the rollups (called once, when the run reaches a terminal status)."""
    if run.status not in lifecycle.TERMINAL or not run.tests:
        return
    sqlite = db.get_bind().dialect.name == "sqlite"
    run_param: Any = run.id.hex if sqlite else run.id
    pipeline_param: Any = None if run.test_definition_id is None else (
        run.test_definition_id.hex if sqlite else run.test_definition_id
    )
    db.execute(text(_DAYS_UPSERT), {"day": run.created_at.date(), "ws": run.workspace_id,
                                    "pipeline": pipeline_param, "run": run_param})
    outage = is_outage(run.tests, run.failed + run.errors)
    failed_cases = _record_failures(db, run=run, outage=outage)
    _record_retries(db, run=run)
    if outage:
        return
    if run.revision:
        _record_same_revision(db, run=run)
    if run.branch:
        _advance_branch_states(db, run=run, failed_cases=failed_cases)


def _record_failures(db: Session, *, run: Run, outage: bool) -> set[int]:
    """Store each failed result with its cluster; returns the failed top-level case ids."""
    rows = db.execute(
        select(CaseResult.id, CaseResult.case_id, CaseResult.parent_idx, CaseResult.message,
               CaseResult.error_type, CaseResult.stack_trace, CaseResult.failure_category)
        .where(CaseResult.run_id == run.id, CaseResult.status.in_(FAILED))
    ).all()
    if not rows:
        return set()
    now = run.completed_at or run.created_at
    clusters: dict[str, int] = {}
    failures = []
    for r in rows:
        sig = signature_of(error_type=r.error_type, message=r.message, stack_trace=r.stack_trace)
        if sig.digest not in clusters:
            clusters[sig.digest] = _cluster_id(db, workspace_id=run.workspace_id, sig=sig, seen=now)
        failures.append({"result_id": r.id, "workspace_id": run.workspace_id, "run_id": run.id, "case_id": r.case_id,
                         "cluster_id": clusters[sig.digest], "category": r.failure_category,
                         "created_at": run.created_at, "outage": outage})
    db.execute(insert(CaseFailure), failures)
    db.execute(update(FailureCluster).where(FailureCluster.id.in_(clusters.values())).values(last_seen=now))
    return {r.case_id for r in rows if r.parent_idx is None}


def _cluster_id(db: Session, *, workspace_id: int, sig: Any, seen: datetime) -> int:
    query = select(FailureCluster.id).where(FailureCluster.workspace_id == workspace_id,
                                            FailureCluster.signature == sig.digest)
    found = db.scalar(query)
    if found is None:
        insert_if_absent(db, FailureCluster.__table__, {
            "workspace_id": workspace_id, "signature": sig.digest, "error_type": sig.error_type,
            "pattern": sig.pattern, "frames": sig.frames, "first_seen": seen, "last_seen": seen,
        }, keys=["workspace_id", "signature"])
        found = db.scalar(query)
    return int(found)  # type: ignore[arg-type]


def _evidence(run: Run, case_id: int, signal: str, **extra: Any) -> dict[str, Any]:
    return {"workspace_id": run.workspace_id, "case_id": case_id, "signal": signal, "run_id": run.id,
            "other_run_id": None, "revision": run.revision, "branch": run.branch,
            "pipeline_id": run.test_definition_id, "flip_rate": None, "created_at": run.created_at, **extra}


def _record_retries(db: Session, *, run: Run) -> None:
    """Signal 2: the case passed on a retry within this run (or its attempts disagree)."""
    flaky = db.scalars(
        select(CaseResult.case_id).where(CaseResult.run_id == run.id, CaseResult.flaky.is_(True))
    ).all()
    if flaky:
        db.execute(insert(FlakyEvidence), [_evidence(run, c, "retry") for c in set(flaky)])


def _record_same_revision(db: Session, *, run: Run) -> None:
    """Signal 1: the case passed and failed on this revision, in this run or another run of the pipeline."""
    others = db.execute(
        select(Run.id, Run.tests, Run.failed, Run.errors).where(
            Run.test_definition_id == run.test_definition_id, Run.revision == run.revision, Run.id != run.id,
            Run.status.in_(lifecycle.TERMINAL), Run.workspace_id == run.workspace_id,
        )
    ).all()
    run_ids = [run.id] + [o.id for o in others if not is_outage(o.tests, o.failed + o.errors)]
    outcomes: dict[int, dict[str, uuid.UUID]] = defaultdict(dict)
    rows = db.execute(select(CaseResult.case_id, CaseResult.status, CaseResult.run_id)
                      .where(CaseResult.run_id.in_(run_ids), CaseResult.status.in_(("passed", *FAILED))))
    mine: dict[int, set[str]] = defaultdict(set)
    for case_id, status, run_id in rows:
        kind = "pass" if status == "passed" else "fail"
        if run_id == run.id:
            mine[case_id].add(kind)
        else:
            outcomes[case_id].setdefault(kind, run_id)
    evidence = []
    for case_id, kinds in mine.items():
        if len(kinds) == 2:
            evidence.append(_evidence(run, case_id, "revision"))
            continue
        opposite = outcomes[case_id].get("fail" if "pass" in kinds else "pass")
        if opposite is not None:
            evidence.append(_evidence(run, case_id, "revision", other_run_id=opposite))
    if evidence:
        db.execute(insert(FlakyEvidence), evidence)


def flip_rate(recent: str) -> float:
    if len(recent) < 2:
        return 0.0
    return sum(a != b for a, b in pairwise(recent)) / (len(recent) - 1)


def next_state(recent: str, alarm: bool, outcome: str) -> tuple[str, bool]:
    """The state after one more result: alarm above FLIP_ALARM (with enough samples), clear below FLIP_RECOVER."""
    recent = (recent + outcome)[-FLIP_WINDOW:]
    rate = flip_rate(recent)
    if not alarm and len(recent) >= FLIP_MIN_SAMPLES and rate >= FLIP_ALARM:
        alarm = True
    elif alarm and rate < FLIP_RECOVER:
        alarm = False
    return recent, alarm


def _advance_branch_states(db: Session, *, run: Run, failed_cases: set[int]) -> None:
    """Signal 3: move each tracked test's recent outcomes on this branch; a test gets a row at its first failure."""
    states = db.execute(
        select(TestBranchState.case_id, TestBranchState.recent, TestBranchState.alarm, CaseResult.status)
        .join(CaseResult, CaseResult.case_id == TestBranchState.case_id)
        .where(CaseResult.run_id == run.id, CaseResult.parent_idx.is_(None),
               TestBranchState.workspace_id == run.workspace_id, TestBranchState.branch == run.branch,
               CaseResult.status.in_(("passed", *FAILED)))
    ).all()
    now = run.completed_at or run.created_at
    changed, dropped, evidence = [], [], []
    for case_id, recent, alarm, status in states:
        new_recent, new_alarm = next_state(recent, bool(alarm), "p" if status == "passed" else "f")
        if new_alarm and not alarm:
            evidence.append(_evidence(run, case_id, "flip", flip_rate=round(flip_rate(new_recent), 3)))
        if not new_alarm and len(new_recent) == FLIP_WINDOW and "f" not in new_recent:
            dropped.append(case_id)  # passing steadily again: no row needed
        else:
            changed.append({"c": case_id, "r_recent": new_recent, "r_alarm": new_alarm, "r_at": now})
    new = failed_cases - {s.case_id for s in states}
    if changed:
        table = cast(Table, TestBranchState.__table__)
        db.connection().execute(
            update(table)
            .where(table.c.workspace_id == run.workspace_id, table.c.branch == run.branch,
                   table.c.case_id == bindparam("c"))
            .values(recent=bindparam("r_recent"), alarm=bindparam("r_alarm"), updated_at=bindparam("r_at")),
            changed,
        )
    if dropped:
        db.execute(delete(TestBranchState).where(
            TestBranchState.workspace_id == run.workspace_id, TestBranchState.branch == run.branch,
            TestBranchState.case_id.in_(dropped)))
    if new:
        db.execute(insert(TestBranchState), [
            {"workspace_id": run.workspace_id, "case_id": c, "branch": run.branch, "recent": "f", "alarm": False,
             "updated_at": now} for c in new])
    if evidence:
        db.execute(insert(FlakyEvidence), evidence)
