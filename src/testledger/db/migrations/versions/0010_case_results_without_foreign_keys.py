"""`case_results` without foreign keys: the writer guarantees both (the run is made, and each case
inserted or found, in the transaction that writes its results; no path deletes cases; `runs delete`
deletes a run's results itself), and on PostgreSQL the checks cost 12-14% of a 100-case run of known
tests and 20-36% of one with new tests (issue 10, docs/benchmarks.md "Issue 10, third pass").

On SQLite the table is rebuilt (SQLite cannot drop a constraint in place): once, on upgrade, about as
long as copying the table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: (name, referred table, column, ON DELETE)
_KEYS: tuple[tuple[str, str, str, str | None], ...] = (
    ("fk_case_results_case_id_cases", "cases", "case_id", None),
    ("fk_case_results_run_id_test_runs", "test_runs", "run_id", "CASCADE"),
)


def upgrade() -> None:
    with op.batch_alter_table("case_results", schema=None) as batch_op:
        for name, _table, _column, _on_delete in _KEYS:
            batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("case_results", schema=None) as batch_op:
        for name, table, column, on_delete in _KEYS:
            batch_op.create_foreign_key(name, table, [column], ["id"], ondelete=on_delete)
