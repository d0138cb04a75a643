"""Analytics fold off the ingest path: `analytics_queue` holds the finished runs not yet folded into the
rollups, `analytics_fold` the one row the fold locks so one process folds at a time; and an index that
covers the duration questions' reads of `test_days` (4 s to build on a store of 10M results).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_queue",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_analytics_queue")),
    )
    fold = op.create_table(
        "analytics_fold",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_fold")),
    )
    op.bulk_insert(fold, [{"id": 1, "folded_at": None}])
    with op.batch_alter_table("test_days", schema=None) as batch_op:
        batch_op.create_index("test_days_durations_idx", ["workspace_id", "day", "case_id", "duration_max", "timed",
                                                          "duration_sum", "pipeline_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("test_days", schema=None) as batch_op:
        batch_op.drop_index("test_days_durations_idx")
    op.drop_table("analytics_fold")
    op.drop_table("analytics_queue")
