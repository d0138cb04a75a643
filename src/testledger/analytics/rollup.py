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


#: Every result's outcome, streamed: the fold never holds a whole run (a 100k-case run held ~130 MB).
_OUTCOMES = _Sql("SELECT case_id, parent_idx, status, flaky, duration_ms FROM case_results WHERE run_id = :run")
#: The failed results with their text, for their clusters.
_FAILED_RESULTS = _Sql(
    "SELECT id, case_id, status, message, error_type, stack_trace, failure_category "
    "FROM case_results WHERE run_id = :run AND status IN ('failed', 'error')"
)
#: Distinct tests whose day rows are written at once (bounds the fold's memory on very large runs).
DAY_ROWS_PER_WRITE = 5_000
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
    days = _Days(fold)
    passed: set[int] = set()
    failed: set[int] = set()
    failed_tests: set[int] = set()  # top-level results only: the branch state follows the test, not its steps
    flaky: set[int] = set()
    for case_id, parent_idx, status, is_flaky, duration_ms in fold.run_sql(_OUTCOMES, {"run": fold.base["run"]}):
        case_id = int(case_id)
        if parent_idx is None:
            days.add(case_id, status, bool(is_flaky), duration_ms)
        if status == "passed":
            passed.add(case_id)
        elif status in FAILED:
            failed.add(case_id)
            if parent_idx is None:
                failed_tests.add(case_id)
        if is_flaky:
            flaky.add(case_id)
    days.write()
    outage = is_outage(run.tests, run.failed + run.errors)
    evidence = [fold.evidence(c, "retry") for c in flaky]
    if failed:
        _record_failures(fold, fold.run_sql(_FAILED_RESULTS, {"run": fold.base["run"]}).all(), outage=outage)
    if not outage and run.revision and run.test_definition_id is not None:
        evidence += _same_revision(fold, passed=passed, failed=failed)
    if not outage and run.branch:
        evidence += _advance_branch_states(fold, failed_tests)
    if evidence:
        fold.run_sql(_EVIDENCE, evidence)


class _Days:
    """Each test's outcomes and durations of this run, added to its row of the run's day (written in
    chunks of DAY_ROWS_PER_WRITE tests; the upsert adds, so a test met in two chunks still sums right)."""

    def __init__(self, fold: _Fold) -> None:
        self.fold = fold
        self.head = (fold.run.created_at.date(), fold.run.workspace_id, fold.base["pipeline"])
        self.first_bucket = len(_DAYS_COLUMNS) - DURATION_BUCKETS
        self.rows: dict[int, list[Any]] = {}

    def add(self, case_id: int, status: str, flaky: bool, duration_ms: float | None) -> None:
        d = self.rows.get(case_id)
        if d is None:  # the values of _DAYS_COLUMNS, in order
            if len(self.rows) >= DAY_ROWS_PER_WRITE:
                self.write()
            day, ws, pipeline = self.head
            d = self.rows[case_id] = [day, case_id, ws, pipeline, 0, 0, 0, 0, 0, 0.0, None, *[0] * DURATION_BUCKETS]
        d[4] += 1
        d[5] += status == "passed"
        d[6] += status in FAILED
        d[7] += flaky
        if duration_ms is not None:
            d[8] += 1
            d[9] += duration_ms
            d[10] = duration_ms if d[10] is None else max(d[10], duration_ms)
            d[self.first_bucket + bucket_of(duration_ms)] += 1

    def write(self) -> None:
        rows, self.rows = self.rows, {}
        if not rows:
            return
        if self.fold.sqlite:
            self.fold.conn.exec_driver_sql(_DAYS_SQLITE, [tuple(d) for d in rows.values()])
            return
        with self.fold.conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(_DAYS_PG_STAGE)
            with cur.copy(_DAYS_PG_COPY) as copy:
                for d in rows.values():
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


def _same_revision(fold: _Fold, *, passed: set[int], failed: set[int]) -> list[dict[str, Any]]:
    """Signal 1: the case passed and failed on this revision, in this run or another run of the pipeline."""
    since = fold.value(fold.run.created_at - timedelta(days=REVISION_DAYS))
    theirs: dict[int, dict[str, Any]] = defaultdict(dict)
    params = {**fold.base, "since": since, "min_tests": OUTAGE_MIN_TESTS, "share": OUTAGE_SHARE}
    for case_id, status, run_id in fold.run_sql(_SAME_REVISION, params):
        theirs[case_id].setdefault("pass" if status == "passed" else "fail", run_id)
    evidence = [fold.evidence(case_id, "revision") for case_id in passed & failed]
    for cases, wanted in ((passed - failed, "fail"), (failed - passed, "pass")):
        for case_id in cases:
            opposite = theirs.get(case_id, {}).get(wanted)
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
