"""A run may be a rerun of another: `rerun_of` names the original run's key, `case_keys` the pipeline
cases it executes (null: every case of its pipeline version).

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from testledger.db.types import JSONType

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("test_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rerun_of", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("case_keys", JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("test_runs", schema=None) as batch_op:
        batch_op.drop_column("case_keys")
        batch_op.drop_column("rerun_of")
