"""Rollups of finished runs: per-test daily histograms, failures with their cluster, flaky evidence and
per-branch flip state. `fold_runs` folds a batch of finished runs, in the order they ended, with one
statement per table for the batch (see `testledger.analytics.fold` for the queue that feeds it)."""

from __future__ import annotations

import math
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection

from testledger.analytics.signature import Signature, signature_of
from testledger.db.analytics_tables import DURATION_BUCKETS
from testledger.db.driver_sql import send_pending
from testledger.db.rows import sqlite_datetime

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
    """Statements in both drivers' parameter styles, run on the driver: building SQLAlchemy expressions
    cost ten times the queries themselves."""

    def __init__(self, statement: str) -> None:
        self.sqlite = statement
        self.postgresql = re.sub(r"(?<!:):(\w+)", r"%(\1)s", statement)

    def text(self, sqlite: bool) -> str:
        return self.sqlite if sqlite else self.postgresql


#: One run's outcomes, streamed: the fold never holds a whole run (a 100k-case run held ~130 MB).
_OUTCOMES = _Sql("SELECT case_id, parent_idx, status, flaky, duration_ms FROM case_results WHERE run_id = :run")
#: Distinct (day, test) rows held before they are written (bounds the fold's memory on very large runs).
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
_STATE_UPDATE = _Sql(
    "UPDATE test_branch_states SET recent = :recent, alarm = :alarm, updated_at = :at "
    "WHERE workspace_id = :ws AND branch = :branch AND case_id = :case"
)
_STATE_DELETE = _Sql("DELETE FROM test_branch_states WHERE workspace_id = :ws AND branch = :branch AND case_id = :case")
_STATE_INSERT = _Sql(
    "INSERT INTO test_branch_states (workspace_id, case_id, branch, recent, alarm, updated_at) "
    "VALUES (:ws, :case, :branch, :recent, :alarm, :at)"
)
#: Same-revision evidence looks this far back (re-runs of one commit happen within days).
REVISION_DAYS = 14
#: Runs (or values) one IN list names.
IN_CHUNK = 500
_TERMINAL_SQL = "('completed', 'cancelled', 'timeout')"


@dataclass(slots=True)
class FoldRun:
    """A finished run as the fold needs it (read from `test_runs` when it is folded)."""

    seq: int
    id: uuid.UUID
    workspace_id: int
    pipeline_id: uuid.UUID | None
    revision: str | None
    branch: str | None
    created_at: datetime
    completed_at: datetime | None
    tests: int
    failed: int
    errors: int
    #: Filled by the fold: the run's passed and failed cases (any level), for the same-revision signal.
    passed_cases: set[int] = field(default_factory=set)
    failed_cases: set[int] = field(default_factory=set)

    @property
    def outage(self) -> bool:
        return is_outage(self.tests, self.failed + self.errors)

    @property
    def at(self) -> datetime:
        return self.completed_at or self.created_at


class _Batch:
    """The batch being folded, with values in the driver's form."""

    def __init__(self, conn: Connection, runs: Sequence[FoldRun]) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.runs = runs
        self.evidence: list[dict[str, Any]] = []

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

    def stream(self, sql: _Sql, params: dict[str, Any]) -> Any:
        """Rows straight from the driver's cursor (SQLAlchemy's row handling cost a fifth of the fold)."""
        send_pending(self.conn)  # statements queued on this connection come first
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(sql.text(self.sqlite), params)
        return cursor

    def query(self, statement: str, params: dict[str, Any]) -> Any:
        return self.run_sql(_Sql(statement), params)

    def add_evidence(self, run: FoldRun, case_id: int, signal: str, other: Any = None,
                     rate: float | None = None) -> None:
        self.evidence.append({
            "ws": run.workspace_id, "case": case_id, "signal": signal, "run": self.value(run.id),
            "other": self.value(other), "revision": run.revision, "branch": run.branch,
            "pipeline": self.value(run.pipeline_id), "rate": rate, "at": self.value(run.created_at)})


def fold_runs(conn: Connection, runs: Sequence[FoldRun]) -> None:
    """Fold finished runs into the rollups, in the order given (the order they ended): the same rows as
    folding them one at a time, with one statement per table for the batch (the outcomes of each run
    are streamed, one query a run, so memory stays flat for very large runs)."""
    runs = [r for r in runs if r.tests]
    if not runs:
        return
    batch = _Batch(conn, runs)
    days = _Days(batch)
    states = _BranchStates(batch)
    with_failures = []
    for run in runs:
        tracked = states.before(run)
        flaky: set[int] = set()
        failed_tests: set[int] = set()  # top-level results only: the branch state follows the test, not its steps
        outcomes: list[tuple[int, str]] = []
        days.start(run)
        for case_id, parent_idx, status, is_flaky, duration_ms in batch.stream(_OUTCOMES, {"run": batch.value(run.id)}):
            if parent_idx is None:
                days.add(case_id, status, is_flaky, duration_ms)
                if case_id in tracked and status in ("passed", *FAILED):
                    outcomes.append((case_id, status))
            if status == "passed":
                run.passed_cases.add(case_id)
            elif status in FAILED:
                run.failed_cases.add(case_id)
                if parent_idx is None:
                    failed_tests.add(case_id)
            if is_flaky:
                flaky.add(case_id)
        for case_id in flaky:
            batch.add_evidence(run, case_id, "retry")
        if run.failed_cases:
            with_failures.append(run)
        if not run.outage and run.branch:
            states.advance(run, outcomes, failed_tests)
        if run.outage or not run.revision or run.pipeline_id is None:
            run.passed_cases, run.failed_cases = set(), set()
    days.write()
    _record_failures(batch, with_failures)
    _same_revision(batch, [r for r in runs if r.passed_cases or r.failed_cases])
    states.write()
    if batch.evidence:
        batch.run_sql(_EVIDENCE, batch.evidence)


def unfold_runs(conn: Connection, runs: Sequence[FoldRun], *, queued: set[uuid.UUID]) -> None:
    """Take folded runs that are about to be deleted out of the rollups: their failures, the flaky evidence
    they gave or were cited in, clusters left with no failure (unless categorised by hand; the others get
    their first and last seen again from the failures that stay), and each (day, test) row they counted in is
    counted again from the results that stay (a subtraction could not undo a maximum). `queued`: runs still
    waiting for the fold, left out of the recount (the fold adds them later).

    The branch flip states keep the deleted runs' outcomes among a test's last `FLIP_WINDOW` results on the
    branch until newer results push them out: the order of those results is not kept anywhere else."""
    runs = [r for r in runs if r.tests]
    if not runs:
        return
    batch = _Batch(conn, runs)
    ids = [batch.value(r.id) for r in runs]
    clusters: set[int] = set()
    for chunk in _chunks(ids):
        params = {f"r{i}": v for i, v in enumerate(chunk)}
        marks = _marks("r", len(chunk))
        clusters.update(int(c) for (c,) in batch.query(
            f"SELECT DISTINCT cluster_id FROM case_failures WHERE run_id IN ({marks})", params))
        batch.query(f"DELETE FROM case_failures WHERE run_id IN ({marks})", params)
        batch.query(f"DELETE FROM flaky_evidence WHERE run_id IN ({marks}) OR other_run_id IN ({marks})", params)
    _recount_clusters(batch, sorted(clusters))
    _recount_days(batch, runs, {batch.value(q) for q in queued})


def _recount_clusters(batch: _Batch, clusters: list[int]) -> None:
    for chunk in _chunks(clusters):
        params = {f"c{i}": c for i, c in enumerate(chunk)}
        marks = _marks("c", len(chunk))
        seen = batch.query(
            "SELECT f.cluster_id, min(coalesce(r.completed_at, r.created_at)), "
            "max(coalesce(r.completed_at, r.created_at)) FROM case_failures f JOIN test_runs r ON r.id = f.run_id "
            f"WHERE f.cluster_id IN ({marks}) GROUP BY f.cluster_id", params).all()
        if seen:
            batch.run_sql(_Sql("UPDATE failure_clusters SET first_seen = :first, last_seen = :last WHERE id = :id"),
                          [{"id": c, "first": first, "last": last} for c, first, last in seen])
        batch.query(f"DELETE FROM failure_clusters WHERE id IN ({marks}) AND category IS NULL "
                    "AND NOT EXISTS (SELECT 1 FROM case_failures f WHERE f.cluster_id = failure_clusters.id)", params)


def _recount_days(batch: _Batch, runs: Sequence[FoldRun], queued: set[Any]) -> None:
    """Count each (day, test) row the runs touched again from the other finished, folded runs of that day
    (one read of the day's top-level results per workspace and day, in the order the runs ended)."""
    gone = {batch.value(r.id) for r in runs}
    touched: dict[tuple[int, date], set[int]] = defaultdict(set)
    for run in runs:
        cases = touched[(run.workspace_id, run.created_at.date())]
        cases.update(int(c) for c, parent, *_ in batch.stream(_OUTCOMES, {"run": batch.value(run.id)})
                     if parent is None)
    days = _Days(batch)
    for (ws, day), cases in sorted(touched.items()):
        day_param = day.isoformat() if batch.sqlite else day
        for chunk in _chunks(sorted(cases)):
            params = {"ws": ws, "day": day_param, **{f"c{i}": c for i, c in enumerate(chunk)}}
            batch.query(f"DELETE FROM test_days WHERE day = :day AND case_id IN ({_marks('c', len(chunk))})", params)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for run_id, pipeline, case_id, status, is_flaky, duration_ms in batch.stream(_DAY_RESULTS, {
            "ws": ws, "start": batch.value(start), "end": batch.value(start + timedelta(days=1)),
        }):
            if run_id in gone or run_id in queued or case_id not in cases:
                continue
            days.start_day(day, ws, pipeline)
            days.add(case_id, status, is_flaky, duration_ms)
    days.write()


#: A day's top-level results of one workspace's finished runs, in the order the runs ended (the fold's order).
_DAY_RESULTS = _Sql(
    "SELECT r.id, r.test_definition_id, cr.case_id, cr.status, cr.flaky, cr.duration_ms "
    "FROM test_runs r JOIN case_results cr ON cr.run_id = r.id "
    f"WHERE r.workspace_id = :ws AND r.created_at >= :start AND r.created_at < :end AND r.status IN {_TERMINAL_SQL} "
    "AND cr.parent_idx IS NULL ORDER BY coalesce(r.completed_at, r.created_at), r.id, cr.idx"
)


class _Days:
    """Each test's outcomes and durations, added to its row of its run's day (written in chunks of
    DAY_ROWS_PER_WRITE rows; the upsert adds, so a row met in two chunks still sums right)."""

    def __init__(self, batch: _Batch) -> None:
        self.batch = batch
        self.first_bucket = len(_DAYS_COLUMNS) - DURATION_BUCKETS
        self.rows: dict[tuple[Any, int], list[Any]] = {}
        self.head: tuple[Any, int, Any] = (None, 0, None)

    def start(self, run: FoldRun) -> None:
        """The run whose results `add` takes next: its day, workspace and pipeline in the driver's form."""
        self.start_day(run.created_at.date(), run.workspace_id, self.batch.value(run.pipeline_id))

    def start_day(self, day: date, workspace_id: int, pipeline: Any) -> None:
        self.head = (day.isoformat() if self.batch.sqlite else day, workspace_id, pipeline)

    def add(self, case_id: int, status: str, flaky: bool, duration_ms: float | None) -> None:
        day, ws, pipeline = self.head
        d = self.rows.get((day, case_id))
        if d is None:  # the values of _DAYS_COLUMNS, in order
            if len(self.rows) >= DAY_ROWS_PER_WRITE:
                self.write()
            d = self.rows[(day, case_id)] = [day, case_id, ws, None, 0, 0, 0, 0, 0, 0.0, None, *[0] * DURATION_BUCKETS]
        d[3] = pipeline  # the pipeline of the last run that day (runs come in order)
        d[4] += 1
        d[5] += status == "passed"
        d[6] += status in FAILED
        d[7] += bool(flaky)
        if duration_ms is not None:
            d[8] += 1
            d[9] += duration_ms
            d[10] = duration_ms if d[10] is None else max(d[10], duration_ms)
            d[self.first_bucket + bucket_of(duration_ms)] += 1

    def write(self) -> None:
        rows, self.rows = self.rows, {}
        if not rows:
            return
        if self.batch.sqlite:
            self.batch.conn.exec_driver_sql(_DAYS_SQLITE, [tuple(d) for d in rows.values()])
            return
        send_pending(self.batch.conn)
        with self.batch.conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(_DAYS_PG_STAGE)
            with cur.copy(_DAYS_PG_COPY) as copy:
                for d in rows.values():
                    copy.write_row(d)
            cur.execute(_DAYS_PG_MOVE)


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _marks(prefix: str, count: int) -> str:
    return ", ".join(f":{prefix}{i}" for i in range(count))


def _record_failures(batch: _Batch, runs: list[FoldRun]) -> None:
    """Store each failed result with its cluster (a new signature starts a cluster), in run order."""
    if not runs:
        return
    order = {batch.value(r.id): i for i, r in enumerate(runs)}
    rows: list[Any] = []
    for chunk in _chunks(runs):
        params = {f"r{i}": batch.value(r.id) for i, r in enumerate(chunk)}
        rows += batch.query(
            "SELECT run_id, id, case_id, message, error_type, stack_trace, failure_category FROM case_results "
            f"WHERE run_id IN ({_marks('r', len(chunk))}) AND status IN ('failed', 'error')", params).all()
    rows.sort(key=lambda r: (order[r.run_id], r.id))
    signatures = [signature_of(error_type=r.error_type, message=r.message, stack_trace=r.stack_trace) for r in rows]
    clusters = _cluster_ids(batch, rows, signatures, runs)
    failures = []
    last_seen: dict[int, Any] = {}
    for r, sig in zip(rows, signatures, strict=True):
        run = runs[order[r.run_id]]
        cluster = clusters[(run.workspace_id, sig.digest)]
        failures.append({"id": r.id, "ws": run.workspace_id, "run": r.run_id, "case": r.case_id, "cluster": cluster,
                         "category": r.failure_category, "at": batch.value(run.created_at),
                         "outage": batch.value(run.outage)})
        last_seen[cluster] = batch.value(run.at)
    batch.run_sql(_FAILURE, failures)
    batch.run_sql(_SEEN, [{"at": at, "id": c} for c, at in last_seen.items()])


def _cluster_ids(batch: _Batch, rows: list[Any], signatures: list[Signature],
                 runs: list[FoldRun]) -> dict[tuple[int, str], int]:
    """The cluster of each (workspace, signature), new clusters started in the order their first failure
    came (first seen: that failure's run)."""
    order = {batch.value(r.id): r for r in runs}
    first: dict[tuple[int, str], tuple[Signature, FoldRun]] = {}
    for r, sig in zip(rows, signatures, strict=True):
        run = order[r.run_id]
        first.setdefault((run.workspace_id, sig.digest), (sig, run))
    by_workspace: dict[int, list[str]] = defaultdict(list)
    for ws, digest in first:
        by_workspace[ws].append(digest)
    found: dict[tuple[int, str], int] = {}
    for ws, digests in by_workspace.items():
        for chunk in _chunks(digests):
            lookup = ("SELECT signature, id FROM failure_clusters WHERE workspace_id = :ws "
                      f"AND signature IN ({_marks('s', len(chunk))})")
            params = {"ws": ws, **{f"s{i}": d for i, d in enumerate(chunk)}}
            known = dict(batch.query(lookup, params).all())
            new = [first[(ws, d)] for d in chunk if d not in known]
            if new:
                batch.run_sql(_NEW_CLUSTER, [{"ws": ws, "sig": s.digest, "type": s.error_type, "pattern": s.pattern,
                                              "frames": s.frames, "at": batch.value(run.at)} for s, run in new])
                known = dict(batch.query(lookup, params).all())
            found.update({(ws, d): int(i) for d, i in known.items()})
    return found


def _same_revision(batch: _Batch, runs: list[FoldRun]) -> None:
    """Signal 1: the case passed and failed on this revision, in this run or in another run of the pipeline
    that ended before it (outages left out): one query for the whole batch."""
    if not runs:
        return
    seq_of = {batch.value(r.id): r.seq for r in runs}
    theirs: dict[tuple[Any, str | None], list[Any]] = defaultdict(list)
    pairs = list(dict.fromkeys((batch.value(r.pipeline_id), r.revision) for r in runs))
    since = batch.value(min(r.created_at for r in runs) - timedelta(days=REVISION_DAYS))
    for chunk in _chunks(pairs, IN_CHUNK // 2):
        values = ", ".join(f"(:p{i}, :v{i})" for i in range(len(chunk)))
        params: dict[str, Any] = {"since": since, "min_tests": OUTAGE_MIN_TESTS, "share": OUTAGE_SHARE}
        for i, (pipeline, revision) in enumerate(chunk):
            params[f"p{i}"], params[f"v{i}"] = pipeline, revision
        for row in batch.stream(_Sql(
            f"WITH wanted (pipeline, revision) AS (VALUES {values}) "
            "SELECT r.test_definition_id, r.revision, r.id, r.created_at, cr.case_id, cr.status "
            "FROM wanted JOIN test_runs r ON r.test_definition_id = wanted.pipeline AND r.revision = wanted.revision "
            f"JOIN case_results cr ON cr.run_id = r.id WHERE r.created_at >= :since AND r.status IN {_TERMINAL_SQL} "
            "AND NOT (r.tests >= :min_tests AND r.failed + r.errors >= r.tests * :share) "
            "AND cr.status IN ('passed', 'failed', 'error')"), params,
        ):
            theirs[(row[0], row[1])].append(row[2:])
    # Runs still queued behind this batch ended after every run in it: they are no evidence for it yet.
    others = list({row[0] for found in theirs.values() for row in found} - set(seq_of))
    later: set[Any] = set()
    max_seq = max(seq_of.values())
    for chunk in _chunks(others):
        params = {"seq": max_seq, **{f"r{i}": r for i, r in enumerate(chunk)}}
        later.update(row[0] for row in batch.query(
            f"SELECT run_id FROM analytics_queue WHERE seq > :seq AND run_id IN ({_marks('r', len(chunk))})", params))
    for run in runs:
        me, run_since = batch.value(run.id), batch.value(run.created_at - timedelta(days=REVISION_DAYS))
        mine: dict[int, dict[str, Any]] = defaultdict(dict)
        for other, created, case_id, status in theirs.get((batch.value(run.pipeline_id), run.revision), ()):
            if other == me or other in later or seq_of.get(other, -1) > run.seq or created < run_since:
                continue
            mine[int(case_id)].setdefault("pass" if status == "passed" else "fail", other)
        for case_id in run.passed_cases & run.failed_cases:
            batch.add_evidence(run, case_id, "revision")
        for cases, wanted in ((run.passed_cases - run.failed_cases, "fail"),
                              (run.failed_cases - run.passed_cases, "pass")):
            for case_id in cases:
                opposite = mine.get(case_id, {}).get(wanted)
                if opposite is not None:
                    batch.add_evidence(run, case_id, "revision", other=_uuid(opposite))


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


class _BranchStates:
    """Signal 3, for the batch: each tracked test's recent outcomes per branch, loaded once per branch,
    moved run by run in memory, written once (a test gets a row at its first failure on the branch)."""

    def __init__(self, batch: _Batch) -> None:
        self.batch = batch
        self.loaded: dict[tuple[int, str], dict[int, tuple[str, bool]]] = {}
        self.initial: dict[tuple[int, str, int], tuple[str, bool]] = {}
        self.touched: dict[tuple[int, str, int], datetime] = {}

    def before(self, run: FoldRun) -> dict[int, tuple[str, bool]]:
        """The run's branch's states as they stand before it (`advance` changes them only after reading)."""
        if run.outage or not run.branch:
            return {}
        key = (run.workspace_id, run.branch)
        if key not in self.loaded:
            self.loaded[key] = self._load(*key)
        return self.loaded[key]

    def _load(self, ws: int, branch: str) -> dict[int, tuple[str, bool]]:
        """The states of the tests the batch's runs on this branch recorded, looked up by key: a join of the
        states with the results let PostgreSQL, whose statistics had the states table empty, scan the
        results once per state (2.5 s a batch)."""
        runs = [r for r in self.batch.runs if r.workspace_id == ws and r.branch == branch and not r.outage]
        case_ids: set[int] = set()
        for chunk in _chunks(runs):
            params = {f"r{i}": self.batch.value(r.id) for i, r in enumerate(chunk)}
            case_ids.update(int(c) for (c,) in self.batch.query(
                f"SELECT DISTINCT case_id FROM case_results WHERE run_id IN ({_marks('r', len(chunk))}) "
                "AND parent_idx IS NULL", params))
        states: dict[int, tuple[str, bool]] = {}
        for ids in _chunks(sorted(case_ids)):
            params = {"ws": ws, "branch": branch, **{f"c{i}": c for i, c in enumerate(ids)}}
            for case_id, recent, alarm in self.batch.query(
                "SELECT case_id, recent, alarm FROM test_branch_states WHERE workspace_id = :ws AND branch = :branch "
                f"AND case_id IN ({_marks('c', len(ids))})", params,
            ):
                states[int(case_id)] = (recent, bool(alarm))
                self.initial[(ws, branch, int(case_id))] = (recent, bool(alarm))
        return states

    def advance(self, run: FoldRun, outcomes: list[tuple[int, str]], failed_tests: set[int]) -> None:
        """Move the states of the tests the run recorded (`outcomes`: theirs only, in result order), each
        from its state before the run; a test failing without a state gets one."""
        assert run.branch is not None
        states = tracked = self.loaded[(run.workspace_id, run.branch)]
        changed: dict[int, tuple[str, bool]] = {}
        dropped: set[int] = set()
        alarmed: set[int] = set()
        for case_id, status in outcomes:
            recent, alarm = tracked[case_id]
            new_recent, new_alarm = next_state(recent, alarm, "p" if status == "passed" else "f")
            if new_alarm and not alarm and case_id not in alarmed:
                alarmed.add(case_id)
                self.batch.add_evidence(run, case_id, "flip", rate=round(flip_rate(new_recent), 3))
            if not new_alarm and len(new_recent) == FLIP_WINDOW and "f" not in new_recent:
                dropped.add(case_id)  # passing steadily again: no row needed
            else:
                changed[case_id] = (new_recent, new_alarm)
        new = [case_id for case_id in failed_tests if case_id not in tracked]
        states.update(changed)
        for case_id in dropped:
            states.pop(case_id, None)
        states.update((case_id, ("f", False)) for case_id in new)
        for case_id in (*changed, *dropped, *new):
            self.touched[(run.workspace_id, run.branch, case_id)] = run.at

    def write(self) -> None:
        inserts, updates, deletes = [], [], []
        for (ws, branch, case_id), at in self.touched.items():
            key = {"ws": ws, "branch": branch, "case": case_id, "at": self.batch.value(at)}
            now = self.loaded[(ws, branch)].get(case_id)
            before = self.initial.get((ws, branch, case_id))
            if now is None:
                if before is not None:
                    deletes.append(key)
            elif before is None:
                inserts.append({**key, "recent": now[0], "alarm": self.batch.value(now[1])})
            else:
                updates.append({**key, "recent": now[0], "alarm": self.batch.value(now[1])})
        for sql, rows in ((_STATE_DELETE, deletes), (_STATE_UPDATE, updates), (_STATE_INSERT, inserts)):
            if rows:
                self.batch.run_sql(sql, rows)
