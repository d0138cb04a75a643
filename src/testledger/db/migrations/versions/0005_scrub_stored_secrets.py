"""Secret values stored by versions before secrets were refused in pipeline files are removed from
`pipeline_versions.spec` (they were never used again: a secret now comes from the environment, a
file or --param at run time). Data only; nothing to undo.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:20:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from testledger.db.types import JSONType

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_VERSIONS = sa.table("pipeline_versions", sa.column("id", sa.Integer), sa.column("spec", JSONType))


def scrubbed(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The spec without its secret parameters' values, or None when it holds none."""
    params = spec.get("parameters") or {}
    if not any(isinstance(p, dict) and p.get("secret") and "value" in p for p in params.values()):
        return None
    return {**spec, "parameters": {
        name: {k: v for k, v in p.items() if k != "value"} if isinstance(p, dict) and p.get("secret") else p
        for name, p in params.items()
    }}


def upgrade() -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(_VERSIONS.c.id, _VERSIONS.c.spec)).all():
        clean = scrubbed(row.spec) if isinstance(row.spec, dict) else None
        if clean is not None:
            conn.execute(_VERSIONS.update().where(_VERSIONS.c.id == row.id).values(spec=clean))


def downgrade() -> None:
    pass  # the values are gone on purpose
