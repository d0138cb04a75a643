"""Quarantine: a test set aside with an owner, a reason and an expiry. It keeps running and recording;
health and gates can leave it out. An expired quarantine lifts itself: it simply stops counting."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from testledger.db.analytics_tables import Quarantine
from testledger.db.tables import Pipeline
from testledger.db.types import utcnow
from testledger.errors import Invalid, NotFound
from testledger.services.analytics import scope
from testledger.services.analytics.schemas import QuarantineOut
from testledger.textlimits import refuse_nul


def _active(now: datetime) -> ColumnElement[bool]:
    return or_(Quarantine.expires_at.is_(None), Quarantine.expires_at > now)


def quarantined_ids(db: Session, ws: int, *, now: datetime | None = None) -> set[int]:
    """Case ids under an active quarantine."""
    return {int(c) for c in db.scalars(
        select(Quarantine.case_id).where(Quarantine.workspace_id == ws, _active(now or utcnow())))}


def add_quarantine(
    db: Session, *, workspace: str, test: str, owner: str, reason: str, actor: str,
    expires_at: datetime | None = None, pipeline: str | None = None,
) -> QuarantineOut:
    """Quarantine a test (again: a new owner, reason and expiry replace the old ones)."""
    refuse_nul(test=test, owner=owner, reason=reason, pipeline=pipeline)
    if not owner.strip() or not reason.strip():
        raise Invalid("a quarantine needs --owner and --reason")
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise Invalid(f"--expires must be in the future, got {expires_at:%Y-%m-%d %H:%M} UTC")
    ws = scope.workspace_id(db, workspace)
    found = scope.find_test(db, ws, test)
    db.execute(delete(Quarantine).where(Quarantine.workspace_id == ws, Quarantine.case_id == found.case_id))
    row = Quarantine(workspace_id=ws, case_id=found.case_id, pipeline_id=scope.pipeline_id(db, ws, pipeline),
                     owner=owner.strip()[:255], reason=reason.strip()[:2000], expires_at=expires_at, created_at=now,
                     created_by=actor)
    db.add(row)
    db.flush()
    return _out(row, found.display, pipeline, now)


def list_quarantines(
    db: Session, *, workspace: str, include_expired: bool = False, now: datetime | None = None
) -> list[QuarantineOut]:
    ws = scope.workspace_id(db, workspace)
    now = now or utcnow()
    query = (select(Quarantine, Pipeline.key).outerjoin(Pipeline, Pipeline.id == Quarantine.pipeline_id)
             .where(Quarantine.workspace_id == ws).order_by(Quarantine.created_at))
    if not include_expired:
        query = query.where(_active(now))
    rows = db.execute(query).all()
    names = scope.test_names(db, (q.case_id for q, _ in rows))
    return [_out(q, names.get(q.case_id, str(q.case_id)), key, now) for q, key in rows]


def remove_quarantine(db: Session, *, workspace: str, test: str) -> None:
    ws = scope.workspace_id(db, workspace)
    found = scope.find_test(db, ws, test)
    gone = db.execute(delete(Quarantine).where(Quarantine.workspace_id == ws, Quarantine.case_id == found.case_id))
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"'{found.display}' is not quarantined")


def _out(q: Quarantine, name: str, pipeline: str | None, now: datetime) -> QuarantineOut:
    return QuarantineOut(
        case_id=q.case_id, test=name, pipeline_key=pipeline, owner=q.owner, reason=q.reason, expires_at=q.expires_at,
        created_at=q.created_at, created_by=q.created_by, active=q.expires_at is None or q.expires_at > now,
    )
