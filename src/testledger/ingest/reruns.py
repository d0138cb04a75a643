"""Reruns whose first attempt is already in the store, merged into it in batches (a read and a write
per batch, not per rerun)."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from testledger.db.bulk import NewResult, ResultWriter, add_to_counters, attempt_count
from testledger.db.tables import CaseResult
from testledger.ingest.convert import merge_rerun
from testledger.lifecycle import Totals

#: The columns a merge changes; the stored row is read and written back with exactly these.
MERGED = (
    "status", "duration_ms", "message", "error_type", "failure_category", "stack_trace", "stdout", "stderr",
    "properties", "attempts", "flaky", "attachments",
)
#: Indexes per SELECT ... IN (...): well inside SQLite's and PostgreSQL's parameter limits.
_CHUNK = 500


class StoredReruns:
    """Later entries of tests whose earlier result left the buffer, waiting to be merged into it.

    `apply` writes the writer's buffer first (the earlier result may still be in it), then reads
    the earlier rows, merges every waiting entry in order, and updates rows and counters at once.
    """

    def __init__(self, session: Session, *, run_id: uuid.UUID, writer: ResultWriter) -> None:
        self.session, self.run_id, self.writer = session, run_id, writer
        self._waiting: dict[int, list[NewResult]] = {}
        self._count = 0

    def add(self, idx: int, later: NewResult) -> None:
        self._waiting.setdefault(idx, []).append(later)
        self._count += 1
        if self._count >= self.writer.batch:
            self.apply()

    def discard(self) -> None:
        """Forget what waits (its report was rolled back)."""
        self._waiting, self._count = {}, 0

    def apply(self) -> None:
        self.writer.flush()
        if not self._waiting:
            return
        waiting, self._waiting, self._count = self._waiting, {}, 0
        table = cast(Table, CaseResult.__table__)
        delta = Totals()
        changes: list[dict[str, Any]] = []
        indexes = sorted(waiting)
        for start in range(0, len(indexes), _CHUNK):
            query = select(table.c.idx, table.c.attempt_count, *(table.c[name] for name in MERGED)).where(
                table.c.run_id == self.run_id, table.c.idx.in_(indexes[start:start + _CHUNK])
            )
            for row in self.session.execute(query).mappings():
                earlier = _stored_result(row, case=waiting[row["idx"]][0].case)
                delta.count(earlier.status, flaky=earlier.flaky, category=earlier.failure_category, sign=-1)
                for later in waiting[row["idx"]]:
                    merge_rerun(earlier, later)
                delta.count(earlier.status, flaky=earlier.flaky, category=earlier.failure_category)
                self.writer.builder.limits.cap_result(earlier)
                changes.append({"b_idx": row["idx"], "b_attempt_count": attempt_count(earlier),
                                **{f"b_{name}": getattr(earlier, name) for name in MERGED}})
        statement = (
            update(table)
            .where(table.c.run_id == self.run_id, table.c.idx == bindparam("b_idx"))
            .values({name: bindparam(f"b_{name}", type_=table.c[name].type) for name in (*MERGED, "attempt_count")})
        )
        self.session.connection().execute(statement, changes)
        add_to_counters(self.session, run_id=self.run_id, delta=delta)


def _stored_result(row: Any, *, case: Any) -> NewResult:
    """The stored row as a result to merge into; its attempt count matters once attempts were cut."""
    attempts = row["attempts"]
    cut = attempts is not None and len(attempts) != row["attempt_count"]
    return NewResult(idx=row["idx"], case=case, attempt_count=row["attempt_count"] if cut else None,
                     **{name: row[name] for name in MERGED})
