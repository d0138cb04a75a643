"""Slow tests: p50/p95 per test over a window from the daily duration histograms, and duration
regressions (a test now far slower than its own baseline)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from testledger.analytics.fold import catch_up
from testledger.analytics.rollup import bucket_bounds
from testledger.db.tables import DURATION_BUCKETS, TestDay
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
    db: Session, *, workspace: str, pipeline: str | None = None, days: int = 7, limit: int = 20,
    now: datetime | None = None,
) -> SlowReport:
    """The `limit` tests with the highest p95 duration over the window, and the duration regressions."""
    catch_up(db)  # every queued finished run folded first: the answer is never stale
    ws = scope.workspace_id(db, workspace)
    now = now or utcnow()
    since = scope.window_start(days, now)
    pipeline_id = scope.pipeline_id(db, ws, pipeline)
    # A test's p95 never exceeds its maximum: rank by maximum, and stop reading histograms once the
    # limit-th best p95 is at least the next test's maximum (the rest cannot enter the list).
    query = (select(TestDay.case_id, func.max(TestDay.duration_max).label("m"))
             .where(TestDay.workspace_id == ws, TestDay.day >= since.date(), TestDay.duration_max.is_not(None))
             .group_by(TestDay.case_id).order_by(func.max(TestDay.duration_max).desc()))
    if pipeline_id is not None:
        query = query.where(TestDay.pipeline_id == pipeline_id)
    ranked = db.execute(query).all()
    window = days_between(since.date(), now.date())
    found: list[SlowTest] = []
    for start in range(0, len(ranked), CHUNK):
        if len(found) >= limit and found[limit - 1].p95_ms >= ranked[start].m:
            break
        found.extend(_summaries(db, [r.case_id for r in ranked[start:start + CHUNK]], window))
        found.sort(key=lambda s: -s.p95_ms)
    names = scope.test_names(db, (s.case_id for s in found[:limit]))
    tests = [s.model_copy(update={"test": names.get(s.case_id, s.test)}) for s in found[:limit]]
    return SlowReport(since=since, tests=tests, regressions=duration_regressions(db, ws=ws, now=now,
                                                                                 pipeline_id=pipeline_id))


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last: with the key (day, test), `day IN (...)` makes point lookups where a
    range on day would read every test's rows of the window for each chunk of tests (1.7 s at 10M)."""
    return [first + timedelta(days=d) for d in range((last - first).days + 1)]


def _summaries(db: Session, case_ids: list[int], days: list[date]) -> list[SlowTest]:
    merged: dict[int, list[Any]] = {}
    rows = db.execute(select(TestDay.case_id, TestDay.timed, TestDay.duration_sum, TestDay.duration_max, *_HIST)
                      .where(TestDay.day.in_(days),
                             TestDay.case_id.in_(case_ids)))
    for r in rows:
        m = merged.setdefault(int(r[0]), [0, 0.0, 0.0, [0] * DURATION_BUCKETS])
        m[0] += r[1]
        m[1] += r[2]
        m[2] = max(m[2], r[3] or 0.0)
        m[3] = [a + b for a, b in zip(m[3], r[4:], strict=True)]
    return [
        SlowTest(case_id=c, test=str(c), results=n, mean_ms=round(total / n, 1), max_ms=top,
                 p50_ms=percentile(hist, 0.5, top), p95_ms=percentile(hist, 0.95, top))
        for c, (n, total, top, hist) in merged.items() if n
    ]


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
    baseline: dict[int, list[float]] = {}
    ids = list(recent)
    before = days_between(today - timedelta(days=BASELINE_DAYS), today - timedelta(days=1))
    for start in range(0, len(ids), 500):
        for c, n, total, top in db.connection().execute(
            select(TestDay.case_id, func.sum(TestDay.timed), func.sum(TestDay.duration_sum),
                   func.max(TestDay.duration_max))
            .where(TestDay.workspace_id == ws, TestDay.day.in_(before), TestDay.case_id.in_(ids[start:start + 500]))
            .group_by(TestDay.case_id)
        ):
            baseline[int(c)] = [n or 0, total or 0.0, top or 0.0]
    found = [
        DurationRegression(case_id=c, test=str(c), recent_max_ms=m, baseline_mean_ms=round(b[1] / b[0], 1),
                           baseline_max_ms=b[2])
        for c, m in recent.items() if (b := baseline.get(c, [0.0, 0.0, 0.0]))[0]
        and m > REGRESSION_FACTOR * (b[1] / b[0]) and m > b[2]
    ]
    found.sort(key=lambda r: -r.recent_max_ms / max(r.baseline_mean_ms, 1.0))
    names = scope.test_names(db, (r.case_id for r in found[:limit]))
    return [r.model_copy(update={"test": names.get(r.case_id, r.test)}) for r in found[:limit]]
