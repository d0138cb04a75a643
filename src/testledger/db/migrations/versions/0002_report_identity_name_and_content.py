"""A report's identity within a run is its name and its content (reports with equal content under
different names, e.g. shards or empty files, are each stored).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 17:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report_files", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_report_files_run_id_sha256"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_report_files_run_id_name_sha256"), ["run_id", "name", "sha256"])


def downgrade() -> None:
    # Reports that share content under different names cannot keep their rows under the old rule.
    with op.batch_alter_table("report_files", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_report_files_run_id_name_sha256"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_report_files_run_id_sha256"), ["run_id", "sha256"])
