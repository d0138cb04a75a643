"""Compare two runs, or a run with the last passing run of its pipeline on the same branch."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.db.records import find_run
from testledger.db.tables import Case, CaseResult, Run
from testledger.errors import NotFound
from testledger.services.analytics.schemas import CaseChange, Comparison
from testledger.services.analytics.scope import display_name
from testledger.services.runs import error_text

#: A duration regression: at least this many times the base duration and this many ms longer.
REGRESSION_RATIO = 2.0
REGRESSION_FLOOR_MS = 500.0
FAILED = ("failed", "error")


def compare_runs(db: Session, *, workspace: str, run: str, base: str | None = None) -> Comparison:
    """What changed from `base` (default: the last passing run of the pipeline on the run's branch) to `run`."""
    target = find_run(db, workspace=workspace, key=run)
    baseline = find_run(db, workspace=workspace, key=base) if base else _last_green(db, target)
    now, before = _results(db, target), _results(db, baseline)
    out = Comparison(run=target.key, base=baseline.key, new_failures=[], fixed=[], still_failing=[], new_tests=[],
                     removed_tests=[], duration_regressions=[])
    for case_id, r in now.items():
        b = before.get(case_id)
        change = _change(case_id, r, b)
        if b is None:
            out.new_tests.append(change)
        elif r.status in FAILED:
            (out.still_failing if b.status in FAILED else out.new_failures).append(change)
        elif b.status in FAILED and r.status == "passed":
            out.fixed.append(change)
        elif r.status == b.status == "passed" and _slower(r.duration_ms, b.duration_ms):
            out.duration_regressions.append(change)
    out.removed_tests = [_change(c, None, b) for c, b in before.items() if c not in now]
    out.duration_regressions.sort(key=lambda c: -(c.duration_ms or 0) / max(c.base_duration_ms or 1, 1))
    return out


def _slower(now: float | None, before: float | None) -> bool:
    return now is not None and before is not None and now >= before * REGRESSION_RATIO and \
        now - before >= REGRESSION_FLOOR_MS


def _last_green(db: Session, run: Run) -> Run:
    query = (select(Run).where(Run.test_definition_id == run.test_definition_id, Run.status == lifecycle.COMPLETED,
                               Run.result == "passed", Run.created_at < run.created_at, Run.id != run.id)
             .order_by(Run.created_at.desc()).limit(1))
    query = query.where(Run.branch.is_(None) if run.branch is None else Run.branch == run.branch)
    found = db.scalar(query) if run.test_definition_id is not None else None
    if found is None:
        raise NotFound(f"run '{run.key}' has no earlier passing run on its branch: name one, `compare {run.key} BASE`")
    return found


def _results(db: Session, run: Run) -> dict[int, Any]:
    """Top-level results by test (a test recorded twice in a run counts by its last result)."""
    rows = db.execute(
        select(CaseResult.case_id, CaseResult.status, CaseResult.duration_ms, CaseResult.message,
               CaseResult.error_type, Case.classname, Case.name, Case.key)
        .join(Case, Case.id == CaseResult.case_id)
        .where(CaseResult.run_id == run.id, CaseResult.parent_idx.is_(None)).order_by(CaseResult.idx)
    ).all()
    return {int(r.case_id): r for r in rows}


def _change(case_id: int, now: Any, before: Any) -> CaseChange:
    named = now or before
    return CaseChange(
        case_id=case_id, test=display_name(named.classname, named.name, named.key),
        status=now.status.upper() if now else None, base_status=before.status.upper() if before else None,
        duration_ms=now.duration_ms if now else None, base_duration_ms=before.duration_ms if before else None,
        error=error_text(now.status, now.error_type, now.message) if now else None,
    )
