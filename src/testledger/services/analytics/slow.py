"""Slow tests: p50/p95 per test over a window from the daily duration histograms, and duration
regressions (a test now far slower than its own baseline). Filtered by environment or branch, which the
daily rows do not split by, the same figures come from the raw results of the matching runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.analytics.fold import catch_up
from testledger.analytics.rollup import bucket_bounds, bucket_of
from testledger.db.analytics_tables import DURATION_BUCKETS, TestDay
from testledger.db.driver_sql import send_pending
from testledger.db.tables import Run
from testledger.db.types import utcnow
from testledger.services.analytics import scope
from testledger.services.analytics.schemas import DurationRegression, SlowReport, SlowTest

#: A regression: the newest day's slowest result is over `REGRESSION_FACTOR` x the test's mean before it,
#: above its previous maximum, and at least `REGRESSION_FLOOR_MS` (tiny tests jitter by large factors).
REGRESSION_FACTOR = 5.0
REGRESSION_FLOOR_MS = 1000.0
BASELINE_DAYS = 30
_HIST = [TestDay.__table__.c[f"h{k}"] for k in range(DURATION_BUCKETS)]
CHUNK = 100
#: Results one query over the raw results reads at most (a chunk of runs, by their counters): PostgreSQL's
#: client cursor holds a query's rows until they are read.
RESULTS_PER_QUERY = 50_000
IN_CHUNK = 500
_Named = TypeVar("_Named", SlowTest, DurationRegression)


def percentile(histogram: list[int], q: float, maximum: float | None) -> float:
    """The q-quantile of a histogram, interpolated geometrically inside its bucket, never above the maximum."""
    total = sum(histogram)
    if not total:
        return 0.0
    rank = q * total
    seen = 0
    for k, count in enumerate(histogram):
        if count and seen + count >= rank:
            low, high = bucket_bounds(k)
            if high == float("inf"):
                return maximum if maximum is not None else low
            share = (rank - seen) / count
            value = low + (high - low) * share if k == 0 else low * (high / low) ** share
            return round(min(value, maximum) if maximum is not None else value, 1)
        seen += count
    return maximum or 0.0


def slow_tests(
    db: Session, *, workspace: str, pipeline: str | None = None, environment: str | None = None,
    branch: str | None = None, days: int = 7, limit: int = 20, now: datetime | None = None,
) -> SlowReport:
    """The `limit` tests with the highest p95 duration over the window, and the duration regressions.

    With `environment` or `branch`, the answer is computed from the raw results of the matching runs (the
    daily rollup has no environment or branch): the same histograms and percentiles, slower on large stores.
    """
    catch_up(db)  # every queued finished run folded first: the answer is never stale
    ws = scope.workspace_id(db, workspace)
    now = now or utcnow()
    since = scope.window_start(days, now)
    pipeline_id = scope.pipeline_id(db, ws, pipeline)
    if environment is not None or branch is not None:
        env = environment and lifecycle.ENVIRONMENT_ALIASES.get(environment, environment)
        runs = _RunFilter(ws, pipeline_id, env, branch)
        found, regressions = _from_results(db, runs, since.date(), now.date(), limit)
    else:
        found = _ranked(db, ws, pipeline_id, since.date(), now.date(), limit)
        regressions = duration_regressions(db, ws=ws, now=now, pipeline_id=pipeline_id)
    return SlowReport(since=since, tests=_named(db, found, limit), regressions=_named(db, regressions, 50))


def _ranked(db: Session, ws: int, pipeline_id: Any, first: date, last: date, limit: int) -> list[SlowTest]:
    query = (select(TestDay.case_id, func.max(TestDay.duration_max).label("m"))
             .where(TestDay.workspace_id == ws, TestDay.day >= first, TestDay.duration_max.is_not(None))
             .group_by(TestDay.case_id).order_by(func.max(TestDay.duration_max).desc()))
    if pipeline_id is not None:
        query = query.where(TestDay.pipeline_id == pipeline_id)
    window = days_between(first, last)
    return _slowest([(r.case_id, r.m) for r in db.execute(query)], lambda ids: _summaries(db, ids, window), limit)


def _slowest(by_maximum: list[tuple[int, float]], summaries: Callable[[list[int]], list[SlowTest]],
             limit: int) -> list[SlowTest]:
    """The `limit` tests with the highest p95, from tests ranked by their maximum. A test's p95 never exceeds
    its maximum: stop summarising once the limit-th best p95 is at least the next test's maximum (the rest
    cannot enter the list)."""
    found: list[SlowTest] = []
    for start in range(0, len(by_maximum), CHUNK):
        if len(found) >= limit and found[limit - 1].p95_ms >= by_maximum[start][1]:
            break
        found.extend(summaries([c for c, _ in by_maximum[start:start + CHUNK]]))
        found.sort(key=lambda s: -s.p95_ms)
    return found


def _named(db: Session, items: list[_Named], limit: int) -> list[_Named]:
    names = scope.test_names(db, (i.case_id for i in items[:limit]))
    return [i.model_copy(update={"test": names.get(i.case_id, i.test)}) for i in items[:limit]]


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last: with the key (day, test), `day IN (...)` makes point lookups where a
    range on day would read every test's rows of the window for each chunk of tests (1.7 s at 10M)."""
    return [first + timedelta(days=d) for d in range((last - first).days + 1)]


def _summaries(db: Session, case_ids: list[int], days: list[date]) -> list[SlowTest]:
    merged: dict[int, _Timings] = {}
    rows = db.execute(select(TestDay.case_id, TestDay.timed, TestDay.duration_sum, TestDay.duration_max, *_HIST)
                      .where(TestDay.day.in_(days),
                             TestDay.case_id.in_(case_ids)))
    for r in rows:
        m = merged.setdefault(int(r[0]), _Timings())
        m.results += r[1]
        m.total += r[2]
        m.top = max(m.top, r[3] or 0.0)
        m.histogram = [a + b for a, b in zip(m.histogram, r[4:], strict=True)]
    return [t.summary(c) for c, t in merged.items() if t.results]


@dataclass(slots=True)
class _Sums:
    """One test's timed results: how many, their sum and their maximum."""

    results: int = 0
    total: float = 0.0
    top: float = 0.0

    def add(self, duration_ms: float) -> None:
        self.results += 1
        self.total += duration_ms
        self.top = max(self.top, duration_ms)


@dataclass(slots=True)
class _Timings(_Sums):
    """One test's timed results as a `test_days` row holds them: count, sum, maximum and histogram."""

    histogram: list[int] = field(default_factory=lambda: [0] * DURATION_BUCKETS)

    def add(self, duration_ms: float) -> None:
        _Sums.add(self, duration_ms)
        self.histogram[bucket_of(duration_ms)] += 1

    def summary(self, case_id: int) -> SlowTest:
        return SlowTest(case_id=case_id, test=str(case_id), results=self.results,
                        mean_ms=round(self.total / self.results, 1), max_ms=self.top,
                        p50_ms=percentile(self.histogram, 0.5, self.top),
                        p95_ms=percentile(self.histogram, 0.95, self.top))


def _regression(case_id: int, recent_max: float, before: _Sums) -> DurationRegression | None:
    """The regression rule: the newest day's maximum against the timed results of the days before it."""
    if not before.results:
        return None
    mean = before.total / before.results
    if recent_max <= REGRESSION_FACTOR * mean or recent_max <= before.top:
        return None
    return DurationRegression(case_id=case_id, test=str(case_id), recent_max_ms=recent_max,
                              baseline_mean_ms=round(mean, 1), baseline_max_ms=before.top)


def _by_factor(found: list[DurationRegression]) -> list[DurationRegression]:
    return sorted(found, key=lambda r: -r.recent_max_ms / max(r.baseline_mean_ms, 1.0))


def duration_regressions(
    db: Session, *, ws: int, now: datetime, pipeline_id: Any = None, limit: int = 50
) -> list[DurationRegression]:
    """Tests whose slowest result of the newest day beats 5x their earlier mean and their earlier maximum."""
    today = now.date()
    query = select(TestDay.case_id, TestDay.duration_max).where(
        TestDay.workspace_id == ws, TestDay.day == today, TestDay.duration_max >= REGRESSION_FLOOR_MS)
    if pipeline_id is not None:
        query = query.where(TestDay.pipeline_id == pipeline_id)
    recent = {int(c): float(m or 0.0) for c, m in db.execute(query)}
    # Summed per test in SQL, from the covering (workspace, day, test, durations) index: reading the
    # 30 days' rows one by one for ~2,000 tests cost 0.3-0.5 s at 10M results.
    baseline: dict[int, _Sums] = {}
    ids = list(recent)
    before = days_between(today - timedelta(days=BASELINE_DAYS), today - timedelta(days=1))
    for start in range(0, len(ids), 500):
        for c, n, total, top in db.connection().execute(
            select(TestDay.case_id, func.sum(TestDay.timed), func.sum(TestDay.duration_sum),
                   func.max(TestDay.duration_max))
            .where(TestDay.workspace_id == ws, TestDay.day.in_(before), TestDay.case_id.in_(ids[start:start + 500]))
            .group_by(TestDay.case_id)
        ):
            baseline[int(c)] = _Sums(n or 0, total or 0.0, top or 0.0)
    found = [r for c, m in recent.items() if (r := _regression(c, m, baseline.get(c, _Sums())))]
    return _by_factor(found)[:limit]


@dataclass(frozen=True, slots=True)
class _RunFilter:
    workspace_id: int
    pipeline_id: Any
    environment: str | None
    branch: str | None


def _from_results(db: Session, runs: _RunFilter, first: date, today: date,
                  limit: int) -> tuple[list[SlowTest], list[DurationRegression]]:
    """The slow tests and regressions of the filtered runs from their top-level timed results, read once for
    the window's days; the baseline's days before the window are read only when a test may have regressed."""
    baseline_first = today - timedelta(days=BASELINE_DAYS)
    by_day = _finished_runs(db, runs, min(first, baseline_first), today)
    window: dict[int, _Timings] = {}
    recent: dict[int, float] = {}
    baseline: dict[int, _Sums] = {}
    for day in days_between(first, today):
        in_baseline = baseline_first <= day < today
        for case_id, duration in _timed_results(db, by_day.get(day, [])):
            timings = window.get(case_id)
            if timings is None:
                timings = window[case_id] = _Timings()
            timings.add(duration)
            if day == today:
                recent[case_id] = max(recent.get(case_id, 0.0), duration)
            elif in_baseline:
                _sums(baseline, case_id).add(duration)
    # Today's maximum has to beat every earlier result: one already seen in the window rules the test out.
    candidates = {c for c, m in recent.items()
                  if m >= REGRESSION_FLOOR_MS and m > baseline.get(c, _Sums()).top}
    named = sorted(candidates) if len(candidates) <= IN_CHUNK else []  # more are left to the check below
    for day in days_between(baseline_first, first - timedelta(days=1)) if candidates else []:
        for case_id, duration in _timed_results(db, by_day.get(day, []), named):
            if case_id in candidates:
                _sums(baseline, case_id).add(duration)
    found = [r for c in candidates if (r := _regression(c, recent[c], baseline.get(c, _Sums())))]
    by_maximum = sorted(((c, t.top) for c, t in window.items()), key=lambda m: -m[1])
    return _slowest(by_maximum, lambda ids: [window[c].summary(c) for c in ids], limit), _by_factor(found)


def _sums(sums: dict[int, _Sums], case_id: int) -> _Sums:
    found = sums.get(case_id)
    if found is None:
        found = sums[case_id] = _Sums()
    return found


def _finished_runs(db: Session, runs: _RunFilter, first: date, last: date) -> dict[date, list[tuple[Any, int]]]:
    """The finished runs of the filter created from the first day to the last (UTC days, as the daily rows
    count them), by day, each with its number of results; ids in the driver's form (hex text on SQLite)."""
    query = (select(type_coerce(Run.id, String).label("id"), Run.created_at, Run.status, Run.tests)
             .where(Run.workspace_id == runs.workspace_id, Run.created_at >= _midnight(first),
                    Run.created_at < _midnight(last + timedelta(days=1))))
    if runs.pipeline_id is not None:
        query = query.where(Run.test_definition_id == runs.pipeline_id)
    if runs.environment is not None:
        query = query.where(Run.environment == runs.environment)
    if runs.branch is not None:
        query = query.where(Run.branch == runs.branch)
    by_day: dict[date, list[tuple[Any, int]]] = {}
    # Unfinished runs are dropped here, as health does (a status filter can take SQLite off the range).
    for r in db.connection().execute(query):
        if r.status in lifecycle.TERMINAL and r.tests:
            by_day.setdefault(r.created_at.date(), []).append((r.id, r.tests))
    return by_day


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _timed_results(db: Session, runs: Sequence[tuple[Any, int]],
                   tests: Sequence[int] = ()) -> Iterator[tuple[int, float]]:
    """(test, duration) of each top-level timed result of the runs (of these tests only, when given), a query
    per chunk of runs, straight from the driver's cursor (SQLAlchemy's row handling cost a third of the time)."""
    conn = db.connection()
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    marks = ", ".join([mark] * len(tests))
    only = f" AND case_id IN ({marks})" if tests else ""
    send_pending(conn)  # statements queued on this connection come first
    with closing(conn.connection.driver_connection.cursor()) as cursor:  # type: ignore[union-attr]
        for chunk in _run_chunks(runs):
            runs_in = ", ".join([mark] * len(chunk))
            cursor.execute(f"SELECT case_id, duration_ms FROM case_results WHERE run_id IN ({runs_in}) "
                           f"AND parent_idx IS NULL AND duration_ms IS NOT NULL{only}", [*chunk, *tests])
            yield from cursor.fetchall()  # a chunk's rows at once: psycopg's cursor was slow row by row


def _run_chunks(runs: Sequence[tuple[Any, int]]) -> Iterator[list[Any]]:
    """Run ids in chunks of up to IN_CHUNK runs and RESULTS_PER_QUERY results (at least one run)."""
    chunk: list[Any] = []
    results = 0
    for run_id, tests in runs:
        if chunk and (results + tests > RESULTS_PER_QUERY or len(chunk) == IN_CHUNK):
            yield chunk
            chunk, results = [], 0
        chunk.append(run_id)
        results += tests
    if chunk:
        yield chunk
