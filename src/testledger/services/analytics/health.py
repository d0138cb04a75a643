"""Pipeline health over a window: runs, pass and failure rate, mean and p95 duration, streak, last green
and red run, and the daily trend. Reads `test_runs` only (its counters and indexes answer all of it)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.analytics.fold import catch_up
from testledger.db.tables import CaseFailure, Pipeline, Run
from testledger.services.analytics import scope
from testledger.services.analytics.quarantine import quarantined_ids
from testledger.services.analytics.schemas import HealthDay, HealthGroup, HealthReport, RunRef

GREEN, RED = "passed", "failed"
#: Up to this many groups, a last green or red run older than the window is looked up (one indexed query
#: each); beyond it (e.g. every pipeline of a large workspace) the answer stays within the window.
LOOK_BACK_GROUPS = 25


def pipeline_health(
    db: Session,
    *,
    workspace: str,
    pipeline: str | None = None,
    environment: str | None = None,
    branch: str | None = None,
    days: int = 7,
    exclude_quarantined: bool = False,
    now: datetime | None = None,
) -> HealthReport:
    """Health per (pipeline, environment, branch) over the last `days`, newest trend day last."""
    catch_up(db)  # every queued finished run folded first: the answer is never stale
    ws = scope.workspace_id(db, workspace)
    since = scope.window_start(days, now)
    # Ids come raw (hex text on SQLite): making a UUID of each of ~9,000 runs cost a fifth of the answer;
    # the few that are used again are converted there (`_uuid`).
    query = (
        select(type_coerce(Run.id, String).label("id"), Run.key,
               type_coerce(Run.test_definition_id, String).label("test_definition_id"),
               Pipeline.key.label("pipeline"), Run.environment, Run.branch, Run.status, Run.result, Run.created_at,
               Run.duration_ms)
        .outerjoin(Pipeline, Pipeline.id == Run.test_definition_id)
        .where(Run.workspace_id == ws, Run.created_at >= since)
        .order_by(Run.created_at)
    )
    if pipeline is not None:
        query = query.where(Run.test_definition_id == scope.pipeline_id(db, ws, pipeline))
    if environment is not None:
        query = query.where(Run.environment == lifecycle.ENVIRONMENT_ALIASES.get(environment, environment))
    if branch is not None:
        query = query.where(Run.branch == branch)
    # Unfinished runs are dropped here, not in SQL: a status filter made SQLite walk the status index over
    # every completed run of the workspace instead of the (workspace, created_at) range (266 ms at 10M).
    # Core, not the ORM's row loading (which cost as much again for thousands of plain rows).
    rows = [r for r in db.connection().execute(query) if r.status in lifecycle.TERMINAL]
    forgiven = _runs_red_only_by_quarantine(db, ws, rows) if exclude_quarantined else set()
    groups: dict[tuple[Any, str, str | None], list[tuple[Any, str | None]]] = defaultdict(list)
    trend: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        outcome = GREEN if r.id in forgiven else _outcome(r.status, r.result)
        groups[(r.pipeline, r.environment, r.branch)].append((r, outcome))
        day = trend[r.created_at.date()]
        day[0] += 1
        day[1] += outcome == GREEN
        day[2] += outcome == RED
    return HealthReport(
        since=since, days=days, excluded_quarantined=exclude_quarantined,
        groups=[_group(db, key, runs, look_back=len(groups) <= LOOK_BACK_GROUPS)
                for key, runs in sorted(groups.items(), key=lambda g: [str(k) for k in g[0]])],
        trend=[HealthDay(day=d, runs=v[0], passed=v[1], failed=v[2], pass_rate=_rate(v[1], v[1] + v[2]))
               for d, v in sorted(trend.items())],
    )


def _outcome(status: str, result: str | None) -> str | None:
    view = lifecycle.view_status(status, result)
    return GREEN if view == "passed" else RED if view in ("failed", "error") else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def p95(values: Sequence[float]) -> float | None:
    """Nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))])


def _group(
    db: Session, key: tuple[Any, str, str | None], runs: list[tuple[Any, str | None]], *, look_back: bool
) -> HealthGroup:
    passed = sum(o == GREEN for _, o in runs)
    failed = sum(o == RED for _, o in runs)
    durations = [float(r.duration_ms) for r, _ in runs if r.duration_ms is not None]
    decided = [(r, o) for r, o in runs if o is not None]
    streak, streak_outcome = 0, decided[-1][1] if decided else None
    for _, o in reversed(decided):
        if o != streak_outcome:
            break
        streak += 1
    last: dict[str | None, RunRef] = {}
    for r, o in reversed(decided):  # the newest green and red runs only (a RunRef per run cost 20 ms)
        if o not in last:
            last[o] = RunRef(execution_id=r.key, created_at=r.created_at)
            if len(last) == 2:
                break
    first = runs[0][0]
    return HealthGroup(
        pipeline_key=key[0], environment=key[1], branch=key[2], runs=len(runs), passed=passed, failed=failed,
        pass_rate=_rate(passed, passed + failed), failure_rate=_rate(failed, passed + failed),
        mean_duration_ms=round(sum(durations) / len(durations), 1) if durations else None,
        p95_duration_ms=p95(durations), streak=streak, streak_outcome=streak_outcome,
        last_green=last.get(GREEN) or (_last_before(db, first, green=True) if look_back else None),
        last_red=last.get(RED) or (_last_before(db, first, green=False) if look_back else None),
    )


def _last_before(db: Session, run: Any, *, green: bool) -> RunRef | None:
    """The newest green (or red) run of the group before the window, found on the pipeline's status index."""
    if run.test_definition_id is None:
        return None
    outcome = Run.result == "passed" if green else Run.result.in_(("failed", "error"))
    query = (
        select(Run.key, Run.created_at)
        .where(Run.test_definition_id == _uuid(run.test_definition_id), Run.status == lifecycle.COMPLETED, outcome,
               Run.created_at < run.created_at, Run.environment == run.environment)
        .order_by(Run.created_at.desc()).limit(1)
    )
    query = query.where(Run.branch.is_(None) if run.branch is None else Run.branch == run.branch)
    found = db.execute(query).first()
    return RunRef(execution_id=found.key, created_at=found.created_at) if found else None


def _runs_red_only_by_quarantine(db: Session, ws: int, rows: Sequence[Any]) -> set[Any]:
    """Failed runs whose every failure is a quarantined test: green once quarantined tests are left out."""
    quarantined = quarantined_ids(db, ws)
    red = [_uuid(r.id) for r in rows if r.status == lifecycle.COMPLETED and r.result == "failed"]
    if not quarantined or not red:
        return set()
    failing: dict[Any, set[int]] = defaultdict(set)
    for start in range(0, len(red), 500):
        chunk = red[start:start + 500]
        for run_id, case_id in db.execute(select(CaseFailure.run_id, CaseFailure.case_id)
                                          .where(CaseFailure.run_id.in_(chunk))):
            failing[run_id].add(int(case_id))
    return {run_id.hex if isinstance(rows[0].id, str) else run_id
            for run_id, cases in failing.items() if cases <= quarantined}


def _uuid(value: Any) -> uuid.UUID:
    """An id read raw: a UUID from PostgreSQL, hex text from SQLite."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=str(value))
