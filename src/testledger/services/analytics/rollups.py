"""Folding finished runs into the analytics rollups on request (a cron job or worker): what every analytics
answer does first anyway, so the first question after a burst of ingests does not pay for it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from testledger.analytics.fold import catch_up, pending
from testledger.services.analytics.schemas import FoldReport


def fold_queued_runs(db: Session) -> FoldReport:
    """Fold every queued finished run now, batch by batch (each batch commits on its own)."""
    done = catch_up(db)
    return FoldReport(runs=done.runs, batches=done.batches, seconds=round(done.seconds, 3), pending=pending(db))
