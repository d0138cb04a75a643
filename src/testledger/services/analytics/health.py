"""Pipeline health over a window: runs, pass and failure rate, mean and p95 duration, streak, last green
and red run, and the daily trend. Reads `test_runs` only (its counters and indexes answer all of it)."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.analytics.fold import catch_up
from testledger.db.analytics_tables import CaseFailure
from testledger.db.run_pages import runs_since, utc_day, utc_time
from testledger.db.tables import Run
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
    # On the driver's cursor, oldest first; unfinished runs are dropped here, not in SQL: a status filter
    # made SQLite walk the status index over every completed run of the workspace instead of the
    # (workspace, created_at) range (266 ms at 10M).
    found = runs_since(
        db.connection(), workspace_id=ws, since=since,
        pipeline_id=None if pipeline is None else cast(uuid.UUID, scope.pipeline_id(db, ws, pipeline)),
        environment=None if environment is None else lifecycle.ENVIRONMENT_ALIASES.get(environment, environment),
        branch=branch,
    )
    terminal = lifecycle.TERMINAL
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for r in found.rows:
        if r[_STATUS] in terminal:
            groups[r[_GROUP]].append(r)  # (pipeline id, environment, branch)
    forgiven = _runs_red_only_by_quarantine(db, ws, found.rows) if exclude_quarantined else set()
    outcome_of = _Outcomes()
    named = [((found.pipeline_keys.get(key[0]), *key[1:]), runs) for key, runs in groups.items()]
    report: list[HealthGroup] = []
    every_day: list[Any] = []
    every_outcome: list[str | None] = []
    for key, runs in sorted(named, key=lambda g: [str(k) for k in g[0]]):
        outcomes = list(map(outcome_of.__getitem__, map(_status_of, runs)))
        if forgiven:
            outcomes = [GREEN if r[_ID] in forgiven else o for r, o in zip(runs, outcomes, strict=True)]
        every_day += map(_day_of, runs)
        every_outcome += outcomes
        report.append(_group(db, key, runs, outcomes, look_back=len(groups) <= LOOK_BACK_GROUPS))
    trend: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (day, outcome), count in Counter(zip(every_day, every_outcome, strict=True)).items():
        trend[day][0] += count
        if outcome is not None:
            trend[day][1 if outcome == GREEN else 2] += count
    return HealthReport(
        since=since, days=days, excluded_quarantined=exclude_quarantined, groups=report,
        trend=[HealthDay(day=utc_day(d), runs=v[0], passed=v[1], failed=v[2], pass_rate=_rate(v[1], v[1] + v[2]))
               for d, v in sorted(trend.items())],
    )


# The columns of `db.run_pages.runs_since`.
_ID, _KEY, _PIPELINE_ID, _ENVIRONMENT, _BRANCH, _STATUS, _RESULT, _CREATED, _DAY, _DURATION = range(10)
_GROUP = slice(_PIPELINE_ID, _BRANCH + 1)
_status_of, _day_of, _duration_of = itemgetter(slice(_STATUS, _RESULT + 1)), itemgetter(_DAY), itemgetter(_DURATION)


class _Outcomes(dict[tuple[str, str | None], str | None]):
    """GREEN, RED or None for each (status, result), worked out once each."""

    def __missing__(self, key: tuple[str, str | None]) -> str | None:
        self[key] = found = _outcome(*key)
        return found


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
    db: Session, key: tuple[Any, ...], runs: list[tuple[Any, ...]], outcomes: list[str | None], *, look_back: bool
) -> HealthGroup:
    passed, failed = outcomes.count(GREEN), outcomes.count(RED)
    durations = [d for d in map(_duration_of, runs) if d is not None]
    # From the newest run back: the streak of its outcome, ended by the newest run of the other outcome;
    # a RunRef only for those two (one per run cost 20 ms).
    streak, streak_outcome = 0, None
    last: dict[str, RunRef] = {}
    for r, o in zip(reversed(runs), reversed(outcomes), strict=True):
        if o is None:
            continue
        if streak_outcome is None:
            streak_outcome = o
            last[o] = RunRef(execution_id=r[_KEY], created_at=utc_time(r[_CREATED]))
        if o != streak_outcome:
            last[o] = RunRef(execution_id=r[_KEY], created_at=utc_time(r[_CREATED]))
            break
        streak += 1
    first = runs[0]
    return HealthGroup(
        pipeline_key=key[0], environment=key[1], branch=key[2], runs=len(runs), passed=passed, failed=failed,
        pass_rate=_rate(passed, passed + failed), failure_rate=_rate(failed, passed + failed),
        mean_duration_ms=round(sum(durations) / len(durations), 1) if durations else None,
        p95_duration_ms=p95(durations), streak=streak, streak_outcome=streak_outcome,
        last_green=last.get(GREEN) or (_last_before(db, first, green=True) if look_back else None),
        last_red=last.get(RED) or (_last_before(db, first, green=False) if look_back else None),
    )


def _last_before(db: Session, run: Any, *, green: bool) -> RunRef | None:
    """The newest green (or red) run of the group before the window, found on the pipeline's status index
    (`run`: a row of `runs_since`)."""
    if run[_PIPELINE_ID] is None:
        return None
    outcome = Run.result == "passed" if green else Run.result.in_(("failed", "error"))
    query = (
        select(Run.key, Run.created_at)
        .where(Run.test_definition_id == _uuid(run[_PIPELINE_ID]), Run.status == lifecycle.COMPLETED, outcome,
               Run.created_at < utc_time(run[_CREATED]), Run.environment == run[_ENVIRONMENT])
        .order_by(Run.created_at.desc()).limit(1)
    )
    query = query.where(Run.branch.is_(None) if run[_BRANCH] is None else Run.branch == run[_BRANCH])
    found = db.execute(query).first()
    return RunRef(execution_id=found.key, created_at=found.created_at) if found else None


def _runs_red_only_by_quarantine(db: Session, ws: int, rows: Sequence[Any]) -> set[Any]:
    """Failed runs whose every failure is a quarantined test: green once quarantined tests are left out."""
    quarantined = quarantined_ids(db, ws)
    red = [_uuid(r[_ID]) for r in rows if r[_STATUS] == lifecycle.COMPLETED and r[_RESULT] == "failed"]
    if not quarantined or not red:
        return set()
    failing: dict[Any, set[int]] = defaultdict(set)
    for start in range(0, len(red), 500):
        chunk = red[start:start + 500]
        for run_id, case_id in db.execute(select(CaseFailure.run_id, CaseFailure.case_id)
                                          .where(CaseFailure.run_id.in_(chunk))):
            failing[run_id].add(int(case_id))
    return {run_id.hex if isinstance(rows[0][_ID], str) else run_id
            for run_id, cases in failing.items() if cases <= quarantined}


def _uuid(value: Any) -> uuid.UUID:
    """An id read raw: a UUID from PostgreSQL, hex text from SQLite."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=str(value))
