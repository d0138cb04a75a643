"""Rollups kept at run completion: per-test daily histograms, failures with their cluster, flaky evidence
and per-branch flip state. One call per finished run (`record_run`), never work per ingested row."""

from __future__ import annotations

import math
import re
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.analytics.signature import signature_of
from testledger.db.bulk import sqlite_datetime
from testledger.db.tables import DURATION_BUCKETS, Run

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


def bucket_of(duration_ms: float) -> int:
    """The histogram bucket of a duration (see `bucket_bounds`)."""
    if duration_ms < 1:
        return 0
    return min(DURATION_BUCKETS - 1, 1 + int(2 * math.log2(duration_ms)))


_H = [f"h{k}" for k in range(DURATION_BUCKETS)]
_DAYS_COLUMNS = ("day", "case_id", "workspace_id", "pipeline_id", "results", "passed", "failed", "flaky", "timed",
                 "duration_sum", "duration_max", *_H)
_DAYS_ON_CONFLICT = (
    " ON CONFLICT (day, case_id) DO UPDATE SET results = test_days.results + excluded.results, "
    "passed = test_days.passed + excluded.passed, failed = test_days.failed + excluded.failed, "
    "flaky = test_days.flaky + excluded.flaky, timed = test_days.timed + excluded.timed, "
    "duration_sum = test_days.duration_sum + excluded.duration_sum, pipeline_id = excluded.pipeline_id, "
    "duration_max = CASE WHEN test_days.duration_max IS NULL OR excluded.duration_max > test_days.duration_max "
    "THEN excluded.duration_max ELSE test_days.duration_max END, "
    + ", ".join(f"{h} = test_days.{h} + excluded.{h}" for h in _H)
)
# SQLite takes the rows as positional executemany (binding 51 values by name doubled the cost). PostgreSQL
# gets them by COPY into a session-local table and one INSERT ... SELECT: executemany ran the upsert once per
# test and a multi-row VALUES spent its time encoding parameters (16 and 180 ms a run on a loaded machine).
_DAYS_SQLITE = (f"INSERT INTO test_days ({', '.join(_DAYS_COLUMNS)}) VALUES ({', '.join('?' * len(_DAYS_COLUMNS))})"
                + _DAYS_ON_CONFLICT)
_DAYS_PG_STAGE = "CREATE TEMP TABLE IF NOT EXISTS testledger_new_days (LIKE test_days) ON COMMIT DELETE ROWS"
_DAYS_PG_COPY = f"COPY testledger_new_days ({', '.join(_DAYS_COLUMNS)}) FROM STDIN"
_DAYS_PG_MOVE = (f"INSERT INTO test_days ({', '.join(_DAYS_COLUMNS)}) SELECT {', '.join(_DAYS_COLUMNS)} "
                 "FROM testledger_new_days WHERE true" + _DAYS_ON_CONFLICT + "; TRUNCATE testledger_new_days")


def is_outage(tests: int, failed: int) -> bool:
    return tests >= OUTAGE_MIN_TESTS and failed / tests >= OUTAGE_SHARE


class _Sql:
    """Statements in both drivers' parameter styles. This runs once per finished run on the ingest path, so
    it speaks to the driver directly: building SQLAlchemy expressions cost ten times the queries themselves."""

    def __init__(self, statement: str) -> None:
        self.sqlite = statement
        self.postgresql = re.sub(r"(?<!:):(\w+)", r"%(\1)s", statement)

    def text(self, sqlite: bool) -> str:
        return self.sqlite if sqlite else self.postgresql


_RESULTS = _Sql(
    "SELECT id, case_id, parent_idx, status, flaky, duration_ms, message, error_type, stack_trace, failure_category "
    "FROM case_results WHERE run_id = :run"
)
_NEW_CLUSTER = _Sql(
    "INSERT INTO failure_clusters (workspace_id, signature, error_type, pattern, frames, first_seen, last_seen) "
    "VALUES (:ws, :sig, :type, :pattern, :frames, :at, :at) ON CONFLICT (workspace_id, signature) DO NOTHING"
)
_SEEN = _Sql("UPDATE failure_clusters SET last_seen = :at WHERE id = :id")
_FAILURE = _Sql(
    "INSERT INTO case_failures (result_id, workspace_id, run_id, case_id, cluster_id, category, created_at, outage) "
    "VALUES (:id, :ws, :run, :case, :cluster, :category, :at, :outage)"
)
_EVIDENCE = _Sql(
    "INSERT INTO flaky_evidence (workspace_id, case_id, signal, run_id, other_run_id, revision, branch, pipeline_id, "
    "flip_rate, created_at) VALUES (:ws, :case, :signal, :run, :other, :revision, :branch, :pipeline, :rate, :at)"
)
#: Results of the other finished runs of the pipeline on this revision, outages left out (one round trip).
_SAME_REVISION = _Sql(
    "SELECT case_id, status, run_id FROM case_results WHERE status IN ('passed', 'failed', 'error') AND run_id IN "
    "(SELECT id FROM test_runs WHERE test_definition_id = :pipeline AND revision = :revision "
    "AND created_at >= :since AND id <> :run AND status IN ('completed', 'cancelled', 'timeout') "
    "AND NOT (tests >= :min_tests AND failed + errors >= tests * :share))"
)
_STATES = _Sql(
    "SELECT s.case_id, s.recent, s.alarm, r.status FROM case_results r JOIN test_branch_states s "
    "ON s.case_id = r.case_id AND s.workspace_id = :ws AND s.branch = :branch "
    "WHERE r.run_id = :run AND r.parent_idx IS NULL AND r.status IN ('passed', 'failed', 'error')"
)
_STATE_UPDATE = _Sql(
    "UPDATE test_branch_states SET recent = :recent, alarm = :alarm, updated_at = :at "
    "WHERE workspace_id = :ws AND branch = :branch AND case_id = :case"
)
_STATE_DELETE = _Sql("DELETE FROM test_branch_states WHERE workspace_id = :ws AND branch = :branch AND case_id = :case")
_STATE_INSERT = _Sql(
    "INSERT INTO test_branch_states (workspace_id, case_id, branch, recent, alarm, updated_at) "
    "VALUES (:ws, :case, :branch, 'f', :no, :at)"
)
#: Same-revision evidence looks this far back (re-runs of one commit happen within days).
REVISION_DAYS = 14


class _Fold:
    """One finished run being folded into the rollups, with its values in the driver's form."""

    def __init__(self, db: Session, run: Run) -> None:
        self.conn = db.connection()
        self.sqlite = db.get_bind().dialect.name == "sqlite"
        self.run = run
        self.at = self.value(run.completed_at or run.created_at)
        self.base = {"ws": run.workspace_id, "run": self.value(run.id), "branch": run.branch,
                     "pipeline": self.value(run.test_definition_id), "revision": run.revision}

    def value(self, v: Any) -> Any:
        if not self.sqlite:
            return v
        if isinstance(v, uuid.UUID):
            return v.hex
        if isinstance(v, datetime):
            return sqlite_datetime(v)
        return int(v) if isinstance(v, bool) else v

    def run_sql(self, sql: _Sql, params: dict[str, Any] | list[dict[str, Any]]) -> Any:
        return self.conn.exec_driver_sql(sql.text(self.sqlite), params)

    def evidence(self, case_id: int, signal: str, other: Any = None, rate: float | None = None) -> dict[str, Any]:
        return {**self.base, "case": case_id, "signal": signal, "other": self.value(other), "rate": rate,
                "at": self.value(self.run.created_at)}


def record_run(db: Session, *, run: Run) -> None:
    """Fold a finished run into the rollups (called once, when the run reaches a terminal status)."""
    if run.status not in lifecycle.TERMINAL or not run.tests:
        return
    fold = _Fold(db, run)
    rows = fold.run_sql(_RESULTS, {"run": fold.base["run"]}).all()
    _add_to_days(fold, [r for r in rows if r.parent_idx is None])
    outage = is_outage(run.tests, run.failed + run.errors)
    failed = [r for r in rows if r.status in FAILED]
    evidence = [fold.evidence(c, "retry") for c in {int(r.case_id) for r in rows if r.flaky}]
    if failed:
        _record_failures(fold, failed, outage=outage)
    if not outage and run.revision and run.test_definition_id is not None:
        evidence += _same_revision(fold, rows)
    if not outage and run.branch:
        evidence += _advance_branch_states(fold, {int(r.case_id) for r in failed if r.parent_idx is None})
    if evidence:
        fold.run_sql(_EVIDENCE, evidence)


def _add_to_days(fold: _Fold, rows: list[Any]) -> None:
    """Each test's outcomes and durations of this run, added to its row of the run's day."""
    days: dict[int, list[Any]] = {}
    day, ws, pipeline = fold.run.created_at.date(), fold.run.workspace_id, fold.base["pipeline"]
    first_bucket = len(_DAYS_COLUMNS) - DURATION_BUCKETS
    for r in rows:
        d = days.get(r.case_id)
        if d is None:  # the values of _DAYS_COLUMNS, in order
            d = days[r.case_id] = [day, r.case_id, ws, pipeline, 0, 0, 0, 0, 0, 0.0, None, *[0] * DURATION_BUCKETS]
        d[4] += 1
        d[5] += r.status == "passed"
        d[6] += r.status in FAILED
        d[7] += bool(r.flaky)
        if r.duration_ms is not None:
            d[8] += 1
            d[9] += r.duration_ms
            d[10] = r.duration_ms if d[10] is None else max(d[10], r.duration_ms)
            d[first_bucket + bucket_of(r.duration_ms)] += 1
    if fold.sqlite:
        fold.conn.exec_driver_sql(_DAYS_SQLITE, [tuple(d) for d in days.values()])
        return
    with fold.conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(_DAYS_PG_STAGE)
        with cur.copy(_DAYS_PG_COPY) as copy:
            for d in days.values():
                copy.write_row(d)
        cur.execute(_DAYS_PG_MOVE)


def _record_failures(fold: _Fold, rows: list[Any], *, outage: bool) -> None:
    """Store each failed result with its cluster (a new signature starts a cluster)."""
    ws = fold.run.workspace_id
    signatures = {r.id: signature_of(error_type=r.error_type, message=r.message, stack_trace=r.stack_trace)
                  for r in rows}
    clusters = _cluster_ids(fold, list({s.digest: s for s in signatures.values()}.values()))
    failures = []
    for r in rows:
        sig = signatures[r.id]
        failures.append({"id": r.id, "ws": ws, "run": fold.base["run"], "case": r.case_id,
                         "cluster": clusters[sig.digest], "category": r.failure_category,
                         "at": fold.value(fold.run.created_at), "outage": fold.value(outage)})
    fold.run_sql(_FAILURE, failures)
    fold.run_sql(_SEEN, [{"at": fold.at, "id": c} for c in clusters.values()])


def _cluster_ids(fold: _Fold, signatures: list[Any]) -> dict[str, int]:
    """The cluster of each signature, new clusters started for new signatures (500 to a query)."""
    ws = fold.run.workspace_id
    found: dict[str, int] = {}
    for start in range(0, len(signatures), 500):
        chunk = signatures[start:start + 500]
        marks = ", ".join(f":s{i}" for i in range(len(chunk)))
        lookup = _Sql(f"SELECT signature, id FROM failure_clusters WHERE workspace_id = :ws AND signature IN ({marks})")
        params = {"ws": ws, **{f"s{i}": sig.digest for i, sig in enumerate(chunk)}}
        known = dict(fold.run_sql(lookup, params).all())
        new = [s for s in chunk if s.digest not in known]
        if new:
            fold.run_sql(_NEW_CLUSTER, [{"ws": ws, "sig": s.digest, "type": s.error_type, "pattern": s.pattern,
                                         "frames": s.frames, "at": fold.at} for s in new])
            known = dict(fold.run_sql(lookup, params).all())
        found.update({sig: int(i) for sig, i in known.items()})
    return found


def _same_revision(fold: _Fold, rows: list[Any]) -> list[dict[str, Any]]:
    """Signal 1: the case passed and failed on this revision, in this run or another run of the pipeline."""
    since = fold.value(fold.run.created_at - timedelta(days=REVISION_DAYS))
    mine: dict[int, set[str]] = defaultdict(set)
    for r in rows:
        if r.status in ("passed", *FAILED):
            mine[r.case_id].add("pass" if r.status == "passed" else "fail")
    theirs: dict[int, dict[str, Any]] = defaultdict(dict)
    params = {**fold.base, "since": since, "min_tests": OUTAGE_MIN_TESTS, "share": OUTAGE_SHARE}
    for case_id, status, run_id in fold.run_sql(_SAME_REVISION, params):
        theirs[case_id].setdefault("pass" if status == "passed" else "fail", run_id)
    evidence = []
    for case_id, kinds in mine.items():
        if len(kinds) == 2:
            evidence.append(fold.evidence(case_id, "revision"))
            continue
        opposite = theirs[case_id].get("fail" if "pass" in kinds else "pass")
        if opposite is not None:
            evidence.append(fold.evidence(case_id, "revision", other=_uuid(opposite)))
    return evidence


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=str(value))


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


def _advance_branch_states(fold: _Fold, failed_cases: set[int]) -> list[dict[str, Any]]:
    """Signal 3: move each tracked test's recent outcomes on this branch; a test gets a row at its first failure."""
    key = {"ws": fold.run.workspace_id, "branch": fold.run.branch, "at": fold.at}
    states = fold.run_sql(_STATES, {**key, "run": fold.base["run"]}).all()
    changed, dropped, evidence = [], [], []
    for case_id, recent, alarm, status in states:
        new_recent, new_alarm = next_state(recent, bool(alarm), "p" if status == "passed" else "f")
        if new_alarm and not alarm:
            evidence.append(fold.evidence(case_id, "flip", rate=round(flip_rate(new_recent), 3)))
        if not new_alarm and len(new_recent) == FLIP_WINDOW and "f" not in new_recent:
            dropped.append({**key, "case": case_id})  # passing steadily again: no row needed
        else:
            changed.append({**key, "case": case_id, "recent": new_recent, "alarm": fold.value(new_alarm)})
    if changed:
        fold.run_sql(_STATE_UPDATE, changed)
    if dropped:
        fold.run_sql(_STATE_DELETE, dropped)
    new = failed_cases - {int(s.case_id) for s in states}
    if new:
        fold.run_sql(_STATE_INSERT, [{**key, "case": c, "no": fold.value(False)} for c in new])
    return evidence
