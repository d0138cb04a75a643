"""Workspaces: the tenancy boundary every object belongs to."""

from __future__ import annotations

import re

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from testledger.db.bulk import insert_if_absent
from testledger.db.tables import Workspace
from testledger.db.types import utcnow
from testledger.errors import Invalid

_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")


def validate_workspace_key(key: str) -> str:
    if not _KEY.match(key):
        raise Invalid(
            f"invalid workspace key '{key}' (expected 2-16 upper-case letters or digits, starting "
            "with a letter, e.g. WKS)"
        )
    return key


def ensure_workspace(db: Session, *, key: str, name: str | None = None) -> Workspace:
    """The workspace with this key, created on first use."""
    ws = db.scalar(select(Workspace).where(Workspace.key == key))
    if ws is None:
        values = {"key": validate_workspace_key(key), "name": name or key, "run_seq": 0, "created_at": utcnow()}
        insert_if_absent(db, Workspace.__table__, values, keys=["key"])
        ws = db.scalars(select(Workspace).where(Workspace.key == key)).one()
    return ws


def next_run_number(db: Session, *, workspace_id: int) -> int:
    """Hand out the next run number of a workspace atomically (the row lock serialises writers)."""
    return int(
        db.execute(
            text("UPDATE workspaces SET run_seq = run_seq + 1 WHERE id = :id RETURNING run_seq"),
            {"id": workspace_id},
        ).scalar_one()
    )
