"""Analytics: per-test daily rollups with duration histograms, failure clusters, flaky evidence,
per-branch flip state, quarantines and test aliases.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02 17:09:45.955597
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

#: As `testledger.db.tables.DURATION_BUCKETS` (a migration is a snapshot: no import of the models).
DURATION_BUCKETS = 40


def _histogram_columns() -> list[sa.Column[int]]:
    return [sa.Column(f"h{k}", sa.Integer(), nullable=False) for k in range(DURATION_BUCKETS)]


def upgrade() -> None:
    op.create_table(
        "case_failures",
        sa.Column("result_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outage", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("result_id", name=op.f("pk_case_failures")),
    )
    with op.batch_alter_table("case_failures", schema=None) as batch_op:
        batch_op.create_index("case_failures_cluster_idx", ["cluster_id", "created_at"], unique=False)
        batch_op.create_index("case_failures_run_idx", ["run_id"], unique=False)
        batch_op.create_index("case_failures_workspace_idx", ["workspace_id", "created_at"], unique=False)

    op.create_table(
        "failure_clusters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("signature", sa.String(length=32), nullable=False),
        sa.Column("error_type", sa.String(length=255), nullable=True),
        sa.Column("pattern", sa.Text(), nullable=False),
        sa.Column("frames", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failure_clusters")),
        sa.UniqueConstraint("workspace_id", "signature", name=op.f("uq_failure_clusters_workspace_id_signature")),
    )
    op.create_table(
        "flaky_evidence",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("signal", sa.String(length=10), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("other_run_id", sa.Uuid(), nullable=True),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("branch", sa.String(length=255), nullable=True),
        sa.Column("pipeline_id", sa.Uuid(), nullable=True),
        sa.Column("flip_rate", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flaky_evidence")),
        sa.UniqueConstraint("case_id", "signal", "run_id", name=op.f("uq_flaky_evidence_case_id_signal_run_id")),
    )
    with op.batch_alter_table("flaky_evidence", schema=None) as batch_op:
        batch_op.create_index("flaky_evidence_workspace_idx", ["workspace_id", "created_at"], unique=False)

    op.create_table(
        "quarantines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantines")),
        sa.UniqueConstraint("workspace_id", "case_id", name=op.f("uq_quarantines_workspace_id_case_id")),
    )
    op.create_table(
        "test_aliases",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("old_case_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "old_case_id", name=op.f("pk_test_aliases")),
    )
    op.create_table(
        "test_branch_states",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("recent", sa.String(length=100), nullable=False),
        sa.Column("alarm", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "case_id", "branch", name=op.f("pk_test_branch_states")),
    )
    op.create_table(
        "test_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=True),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("flaky", sa.Integer(), nullable=False),
        sa.Column("timed", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("duration_max", sa.Float(), nullable=True),
        *_histogram_columns(),
        sa.PrimaryKeyConstraint("day", "case_id", name=op.f("pk_test_days")),
    )


def downgrade() -> None:
    op.drop_table("test_days")
    op.drop_table("test_branch_states")
    op.drop_table("test_aliases")
    op.drop_table("quarantines")
    with op.batch_alter_table("flaky_evidence", schema=None) as batch_op:
        batch_op.drop_index("flaky_evidence_workspace_idx")

    op.drop_table("flaky_evidence")
    op.drop_table("failure_clusters")
    with op.batch_alter_table("case_failures", schema=None) as batch_op:
        batch_op.drop_index("case_failures_workspace_idx")
        batch_op.drop_index("case_failures_run_idx")
        batch_op.drop_index("case_failures_cluster_idx")

    op.drop_table("case_failures")
