"""Failure clusters: failures across tests and runs grouped by signature, failure categories over time,
and a category set by hand."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.analytics.fold import catch_up
from testledger.db.analytics_tables import CaseFailure, FailureCluster
from testledger.db.tables import Run
from testledger.errors import Invalid, NotFound
from testledger.services.analytics import scope
from testledger.services.analytics.schemas import CategoryDay, ClusterOut, ClusterReport

SAMPLE_TESTS = 3


def failure_clusters(
    db: Session, *, workspace: str, pipeline: str | None = None, days: int = 7, limit: int = 50,
    now: datetime | None = None,
) -> ClusterReport:
    """The clusters with failures in the window, most failures first, and the categories per day."""
    catch_up(db)  # every queued finished run folded first: the answer is never stale
    ws = scope.workspace_id(db, workspace)
    since = scope.window_start(days, now)
    query = (select(CaseFailure.cluster_id, CaseFailure.case_id, CaseFailure.category, CaseFailure.created_at)
             .where(CaseFailure.workspace_id == ws, CaseFailure.created_at >= since))
    if pipeline is not None:
        query = query.join(Run, Run.id == CaseFailure.run_id).where(
            Run.test_definition_id == scope.pipeline_id(db, ws, pipeline))
    counts: Counter[int] = Counter()
    tests: dict[int, set[int]] = defaultdict(set)
    categories: dict[int, Counter[str]] = defaultdict(Counter)
    per_day: dict[tuple[date, int], Counter[str]] = defaultdict(Counter)
    seen: dict[int, list[datetime]] = {}
    for cluster_id, case_id, category, created in db.execute(query):
        counts[cluster_id] += 1
        tests[cluster_id].add(case_id)
        categories[cluster_id][category or "error"] += 1
        per_day[(created.date(), cluster_id)][category or "error"] += 1
        span = seen.setdefault(cluster_id, [created, created])
        span[0], span[1] = min(span[0], created), max(span[1], created)
    top = [c for c, _ in counts.most_common(limit)]
    rows = {c.id: c for c in db.scalars(select(FailureCluster).where(FailureCluster.id.in_(list(counts))))}
    names = scope.test_names(db, (t for c in top for t in sorted(tests[c])[:SAMPLE_TESTS]))
    clusters = [
        ClusterOut(
            id=c, signature=rows[c].signature, error_type=rows[c].error_type, pattern=rows[c].pattern,
            frames=rows[c].frames, category=rows[c].category or categories[c].most_common(1)[0][0],
            category_overridden=rows[c].category is not None, count=counts[c], tests=len(tests[c]),
            first_seen=seen[c][0], last_seen=seen[c][1],
            sample_tests=[names.get(t, str(t)) for t in sorted(tests[c])[:SAMPLE_TESTS]],
        )
        for c in top
    ]
    days_out: dict[date, CategoryDay] = {}
    for (day, cluster_id), by_category in sorted(per_day.items()):
        entry = days_out.setdefault(day, CategoryDay(day=day))
        override = rows[cluster_id].category
        for category, n in by_category.items():
            name = override or category
            setattr(entry, name, getattr(entry, name, 0) + n)
    return ClusterReport(since=since, clusters=clusters, categories=list(days_out.values()))


def set_cluster_category(db: Session, *, workspace: str, cluster: int, category: str | None) -> ClusterOut:
    """Override the category of every failure in a cluster (None returns to the evidence's own)."""
    catch_up(db)  # every queued finished run folded first: the answer is never stale
    if category is not None and category not in lifecycle.FAILURE_CATEGORIES:
        raise Invalid(f"unknown category '{category}' (expected one of {', '.join(lifecycle.FAILURE_CATEGORIES)})")
    ws = scope.workspace_id(db, workspace)
    row = db.scalar(select(FailureCluster).where(FailureCluster.id == cluster, FailureCluster.workspace_id == ws))
    if row is None:
        raise NotFound(f"failure cluster {cluster} not found (`testledger clusters` lists them)")
    row.category = category
    db.flush()
    stats = db.execute(
        select(func.count(), func.count(func.distinct(CaseFailure.case_id))).where(CaseFailure.cluster_id == cluster)
    ).one()
    return ClusterOut(
        id=row.id, signature=row.signature, error_type=row.error_type, pattern=row.pattern, frames=row.frames,
        category=category, category_overridden=category is not None, count=stats[0], tests=stats[1],
        first_seen=row.first_seen, last_seen=row.last_seen,
    )
