"""`cases.workspace_id` without its foreign key: a case's id is derived from its workspace's id by the
writer, which resolves the workspace in the transaction that inserts the case, and no path deletes a
workspace. On PostgreSQL the check cost 7-9% of a 100-case run of new tests (0.5-0.8 ms of 6-8 ms,
alternating with and without it), and it took a KEY SHARE lock on the workspace's row for every new
case, in every concurrent ingest into that workspace (issue 10, docs/benchmarks.md "Issue 10, fifth
pass").

On SQLite the table is rebuilt (SQLite cannot drop a constraint in place), with foreign keys off for
the migration (`db/migrate.py`): once, on upgrade, about as long as copying the table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_KEY = "fk_cases_workspace_id_workspaces"


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(_KEY, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_foreign_key(_KEY, "workspaces", ["workspace_id"], ["id"])
