"""Reruns whose first attempt is already in the store, merged into it in batches (a read and a write
per batch, not per rerun)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from testledger.db import reads
from testledger.db.bulk import MERGED_COLUMNS, ResultWriter, update_results
from testledger.db.engine import connection_of
from testledger.db.rows import NewResult
from testledger.ingest.convert import merge_rerun
from testledger.lifecycle import Totals

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The columns a merge reads (the attempt count is read apart: it decides how attempts are counted).
MERGED = tuple(c for c in MERGED_COLUMNS if c != "attempt_count")
#: Indexes per SELECT ... IN (...): well inside SQLite's (32,766) and PostgreSQL's parameter limits.
_CHUNK = 5000


class StoredReruns:
    """Later entries of tests whose earlier result left the buffer, waiting to be merged into it.

    `apply` writes the writer's buffer first (the earlier result may still be in it), then reads
    the earlier rows, merges every waiting entry in order, and updates rows and counters at once.
    """

    def __init__(self, session: Session | Connection, *, run_id: uuid.UUID, writer: ResultWriter) -> None:
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
        table = reads.case_results
        delta = Totals()
        merged: list[NewResult] = []
        indexes = sorted(waiting)
        for start in range(0, len(indexes), _CHUNK):
            query = select(table.c.idx, table.c.attempt_count, *(table.c[name] for name in MERGED)).where(
                table.c.run_id == self.run_id, table.c.idx.in_(indexes[start:start + _CHUNK])
            )
            for row in connection_of(self.session).execute(query).mappings():
                earlier = _stored_result(row, case=waiting[row["idx"]][0].case)
                delta.count(earlier.status, flaky=earlier.flaky, category=earlier.failure_category, sign=-1)
                for later in waiting[row["idx"]]:
                    merge_rerun(earlier, later)
                delta.count(earlier.status, flaky=earlier.flaky, category=earlier.failure_category)
                merged.append(earlier)
        update_results(self.session, run_id=self.run_id, results=merged, limits=self.writer.builder.limits)
        self.writer.count(delta)


def _stored_result(row: Any, *, case: Any) -> NewResult:
    """The stored row as a result to merge into; its attempt count matters once attempts were cut."""
    attempts = row["attempts"]
    cut = attempts is not None and len(attempts) != row["attempt_count"]
    return NewResult(idx=row["idx"], case=case, attempt_count=row["attempt_count"] if cut else None,
                     **{name: row[name] for name in MERGED})
