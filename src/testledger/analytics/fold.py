"""The fold off the ingest path: a run that ends only queues its id (`enqueue`, one insert in the transaction
that ends it); queued runs are folded into the rollups in batches, in the order they ended, before any
analytics answer (`catch_up`) and by `testledger analytics fold` (a cron job or worker). A run that is deleted
leaves the queue or the rollups with it (`forget`).

One process folds at a time: a batch's transaction first updates the single `analytics_fold` row, which
takes SQLite's write lock and PostgreSQL's row lock, then reads the queue. A second folder waits for the
first to commit and then finds its runs gone from the queue, so racing folders never fold a run twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, insert, select, update

from testledger import lifecycle
from testledger.analytics.rollup import FoldRun, fold_runs, unfold_runs
from testledger.db.analytics_tables import AnalyticsFold, AnalyticsQueue
from testledger.db.tables import Run
from testledger.db.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: Queued runs one batch takes, and the results past which it stops taking more (at least one run):
#: a batch is one transaction, so on SQLite an ingest that ends meanwhile waits for it (1.2-1.5 s for 500
#: runs of 100 results on the development machine).
BATCH_RUNS = 500
BATCH_RESULTS = 50_000


@dataclass(frozen=True, slots=True)
class Folded:
    runs: int
    batches: int
    seconds: float


def pending(conn: Connection | Session) -> int:
    """Runs queued and not yet folded."""
    return int(conn.execute(select(func.count()).select_from(AnalyticsQueue)).scalar_one())


def catch_up(db: Session) -> Folded:
    """Fold every queued run before an analytics answer, so no answer misses a finished run.

    A session that has not begun its transaction (what the adapters pass) is asked whether anything is
    queued; when something is, its snapshot is dropped, the runs are folded in transactions of their own
    on another connection of its engine (committed batch by batch), and the answer then reads them. A
    session already in a transaction folds inside it: its writes go with that transaction.
    """
    if db.in_transaction():
        return fold_queued(db.connection(), commit=False)
    if db.execute(select(AnalyticsQueue.seq).limit(1)).first() is None:
        return Folded(0, 0, 0.0)
    db.rollback()  # the check began a snapshot (SQLite keeps it): the answer must read after the fold
    with db.get_bind().connect() as conn:  # type: ignore[union-attr]
        return fold_queued(conn, commit=True)


def fold_queued(conn: Connection, *, commit: bool, max_runs: int | None = None) -> Folded:
    """Fold queued runs batch by batch until none is left (or `max_runs` are done); with `commit`, each
    batch is a transaction of its own (begun and committed here), else all run in the caller's."""
    start = time.perf_counter()
    runs = batches = 0
    while max_runs is None or runs < max_runs:
        if commit:
            with conn.begin():
                done = _fold_batch(conn)
        else:
            done = _fold_batch(conn)
        if not done:
            break
        runs += done
        batches += 1
    return Folded(runs, batches, time.perf_counter() - start)


def forget(conn: Connection, run_ids: Sequence[uuid.UUID]) -> None:
    """Take runs that are about to be deleted (in this transaction) out of the analytics: a queued run just
    leaves the queue, a folded one leaves the rollups (`rollup.unfold_runs`). The fold's lock comes first, so
    a batch that is folding one of them commits before and the run is then found folded."""
    _lock(conn)
    queued = {q for (q,) in conn.execute(select(AnalyticsQueue.run_id))}
    runs: list[FoldRun] = []
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start:start + 500])
        conn.execute(delete(AnalyticsQueue).where(AnalyticsQueue.run_id.in_(chunk)))
        runs += [_fold_run(row) for row in conn.execute(_RUNS.where(Run.id.in_(chunk)))
                 if row.id not in queued and row.status in lifecycle.TERMINAL]
    unfold_runs(conn, runs, queued=queued - set(run_ids))


_RUNS = select(Run.id, Run.workspace_id, Run.test_definition_id, Run.revision, Run.branch, Run.created_at,
               Run.completed_at, Run.status, Run.tests, Run.failed, Run.errors)


def _fold_run(row: Any, seq: int = 0) -> FoldRun:
    return FoldRun(seq=seq, id=row.id, workspace_id=row.workspace_id, pipeline_id=row.test_definition_id,
                   revision=row.revision, branch=row.branch, created_at=row.created_at, completed_at=row.completed_at,
                   tests=row.tests or 0, failed=row.failed or 0, errors=row.errors or 0)


def _lock(conn: Connection) -> None:
    """Take the fold's lock (the first write of the transaction, so SQLite takes its write lock here)."""
    taking = update(AnalyticsFold).where(AnalyticsFold.id == 1).values(folded_at=utcnow())
    if conn.execute(taking).rowcount == 0:  # the row is gone (a store emptied by hand): put it back
        conn.execute(insert(AnalyticsFold).values(id=1, folded_at=utcnow()))


def _fold_batch(conn: Connection) -> int:
    """Fold the next batch of queued runs; returns how many queue entries it took (0: none left)."""
    _lock(conn)
    rows = conn.execute(
        _RUNS.add_columns(AnalyticsQueue.seq).select_from(AnalyticsQueue)
        .outerjoin(Run, Run.id == AnalyticsQueue.run_id).order_by(AnalyticsQueue.seq).limit(BATCH_RUNS)
    ).all()
    if not rows:
        return 0
    taken: list[int] = []
    runs: list[FoldRun] = []
    seen: set[Any] = set()
    results = 0
    for row in rows:
        if runs and results + (row.tests or 0) > BATCH_RESULTS:
            break
        taken.append(row.seq)
        # A run deleted while queued has nothing left to fold; a run queued twice is folded once.
        if row.id is None or row.id in seen or row.status not in lifecycle.TERMINAL:
            continue
        seen.add(row.id)
        results += row.tests or 0
        runs.append(_fold_run(row, row.seq))
    fold_runs(conn, runs)
    for start in range(0, len(taken), 500):
        conn.execute(delete(AnalyticsQueue).where(AnalyticsQueue.seq.in_(taken[start:start + 500])))
    return len(taken)
