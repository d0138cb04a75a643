"""A test's recent results across runs (durations, revisions, runs), its old names included."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger.analytics.fold import catch_up
from testledger.db.analytics_tables import TestAlias, TestDay
from testledger.db.tables import CaseResult, Pipeline, Run
from testledger.db.types import utcnow
from testledger.errors import Invalid
from testledger.services.analytics import scope
from testledger.services.analytics.quarantine import quarantined_ids
from testledger.services.analytics.schemas import HistoryEntry, TestHistory
from testledger.services.analytics.slow import days_between
from testledger.services.runs import error_text

MAX_RESULTS = 500
#: How far back the pipelines that ran the test are looked up in the daily rollup.
LOOKBACK_DAYS = 90


def test_history(
    db: Session, *, workspace: str, test: str, limit: int = 50, now: datetime | None = None
) -> TestHistory:
    """The newest `limit` results of a test, under its current and old names."""
    catch_up(db)  # every queued finished run folded first: the answer is never stale
    if not 1 <= limit <= MAX_RESULTS:
        raise Invalid(f"--limit must be between 1 and {MAX_RESULTS}, got {limit}")
    ws = scope.workspace_id(db, workspace)
    found = scope.find_test(db, ws, test)
    current = scope.alias_map(db, ws).get(found.case_id, found.case_id)
    old = [int(c) for c in db.scalars(
        select(TestAlias.old_case_id).where(TestAlias.workspace_id == ws, TestAlias.case_id == current))]
    ids = [current, *old]
    names = scope.test_names(db, ids)
    # No index leads from a test to its results (one would slow every insert): the daily rollup names the
    # pipelines that ran it, and their runs are walked newest first, each probed by (run, test).
    today = (now or utcnow()).date()
    days = days_between(today - timedelta(days=LOOKBACK_DAYS), today)
    pipelines = {p for p in db.scalars(select(TestDay.pipeline_id).where(TestDay.day.in_(days),
                                                                        TestDay.case_id.in_(ids))) if p}
    query = (
        select(Run.key, Run.created_at, Pipeline.key.label("pipeline"), Run.environment, Run.branch, Run.revision,
               CaseResult.status, CaseResult.duration_ms, CaseResult.message, CaseResult.error_type,
               CaseResult.case_id)
        .join(CaseResult, CaseResult.run_id == Run.id)
        .outerjoin(Pipeline, Pipeline.id == Run.test_definition_id)
        .where(Run.workspace_id == ws, CaseResult.case_id.in_(ids))
        .order_by(Run.created_at.desc()).limit(limit)
    )
    if pipelines:
        query = query.where(Run.test_definition_id.in_(pipelines))
    results = [
        HistoryEntry(execution_id=r.key, created_at=r.created_at, pipeline_key=r.pipeline, environment=r.environment,
                     branch=r.branch, revision=r.revision, status=r.status.upper(), duration_ms=r.duration_ms,
                     error=error_text(r.status, r.error_type, r.message), name=names.get(r.case_id, ""))
        for r in db.execute(query)
    ]
    return TestHistory(case_id=current, test=names.get(current, found.display), aliases=[names[c] for c in old],
                       quarantined=current in quarantined_ids(db, ws), results=results)


