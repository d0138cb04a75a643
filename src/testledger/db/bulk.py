"""Fast bulk writes of case results: raw `executemany` on SQLite, COPY on PostgreSQL.

This is the one module where SQL differs by dialect. The ORM costs 20x over raw inserts on this
path (PERFORMANCE.md), so rows travel as tuples straight to the driver.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

RESULT_COLUMNS = (
    "run_id", "idx", "parent_idx", "case_id", "status", "duration_ms", "message", "error_type",
    "failure_category", "stack_trace", "stdout", "stderr", "properties", "attempt_count", "attempts",
    "flaky", "worker", "started_at", "completed_at", "log_ref", "attachments",
)
CASE_COLUMNS = ("id", "workspace_id", "identity", "kind", "key", "name", "suite", "classname", "created_at")

_SQLITE_RESULTS = (
    f"INSERT INTO case_results ({', '.join(RESULT_COLUMNS)}) VALUES ({', '.join('?' * len(RESULT_COLUMNS))})"
)
_SQLITE_CASES = (
    f"INSERT OR IGNORE INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({', '.join('?' * len(CASE_COLUMNS))})"
)
_PG_CASES = (
    f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({', '.join(['%s'] * len(CASE_COLUMNS))}) "
    "ON CONFLICT (id) DO NOTHING"
)
_COUNTERS = (
    "UPDATE test_runs SET tests = tests + :tests, passed = passed + :passed, failed = failed + :failed, "
    "errors = errors + :errors, skipped = skipped + :skipped, flaky = flaky + :flaky, "
    "infra_faults = infra_faults + :infra WHERE id = :run_id"
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sqlite_datetime(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite dialect stores for a UTC datetime, so both write paths agree."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(slots=True)
class Counters:
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    infra: int = 0

    def add(self, other: Counters) -> None:
        for name in ("tests", "passed", "failed", "errors", "skipped", "flaky", "infra"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def count(self, status: str, *, flaky: bool, category: str | None, sign: int = 1) -> None:
        """Count one top-level result (sign=-1 takes one back, when a rerun replaces it)."""
        self.tests += sign
        if status == "passed":
            self.passed += sign
        elif status == "failed":
            self.failed += sign
        elif status == "error":
            self.errors += sign
        else:
            self.skipped += sign
        self.flaky += sign * flaky
        self.infra += sign * (category == "infrastructure")


@dataclass(slots=True)
class NewCase:
    id: int
    identity: str
    kind: str
    name: str
    key: str | None = None
    suite: str | None = None
    classname: str | None = None


@dataclass(slots=True)
class NewResult:
    """A case result on its way to the store. `case` names the test it belongs to."""

    idx: int
    case: NewCase
    status: str
    parent_idx: int | None = None
    duration_ms: float | None = None
    message: str | None = None
    error_type: str | None = None
    failure_category: str | None = None
    stack_trace: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    properties: dict[str, str] | None = None
    attempts: list[dict[str, Any]] | None = None
    flaky: bool = False
    worker: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    log_ref: str | None = None
    attachments: list[str] | None = None


@dataclass
class ResultWriter:
    """Buffers results of one run and writes them in batches, with their cases and run counters.

    Call `add` per result and `flush` before the transaction commits; `flush` also runs every
    `batch` rows so memory stays bounded on a 100k-case report. Until a flush, a buffered result
    can still be changed in place (`buffered`), which is how reruns become attempts cheaply.
    """

    session: Session
    run_id: uuid.UUID
    workspace_id: int
    now: datetime
    batch: int = 5000
    counters: Counters = field(default_factory=Counters)
    written: int = 0
    _buffer: list[NewResult] = field(default_factory=list)
    _by_case: dict[int, NewResult] = field(default_factory=dict)
    _known_cases: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._sqlite = self.session.get_bind().dialect.name == "sqlite"
        self._run = self.run_id.hex if self._sqlite else str(self.run_id)
        self._created: Any = sqlite_datetime(self.now) if self._sqlite else self.now

    def add(self, result: NewResult) -> None:
        self._buffer.append(result)
        if result.parent_idx is None:
            self._by_case[result.case.id] = result
        if len(self._buffer) >= self.batch:
            self.flush()

    def buffered(self, case_id: int) -> NewResult | None:
        """The not-yet-written top-level result of this case, if any."""
        return self._by_case.get(case_id)

    def flush(self) -> None:
        if not self._buffer:
            return
        cases: list[tuple[Any, ...]] = []
        rows: list[tuple[Any, ...]] = []
        pending = Counters()
        for r in self._buffer:
            if r.case.id not in self._known_cases:
                self._known_cases.add(r.case.id)
                cases.append(self._case_row(r.case))
            rows.append(self._result_row(r))
            if r.parent_idx is None:
                pending.count(r.status, flaky=r.flaky, category=r.failure_category)
        conn = self.session.connection()
        if self._sqlite:
            if cases:
                conn.exec_driver_sql(_SQLITE_CASES, cases)
            conn.exec_driver_sql(_SQLITE_RESULTS, rows)
        else:
            _copy_postgresql(conn, cases, rows)
        add_to_counters(self.session, run_id=self._run, delta=pending)
        self.counters.add(pending)
        self.written += len(rows)
        self._buffer.clear()
        self._by_case.clear()

    def _case_row(self, case: NewCase) -> tuple[Any, ...]:
        return (
            case.id, self.workspace_id, case.identity, case.kind, case.key, case.name,
            case.suite, case.classname, self._created,
        )

    def _result_row(self, r: NewResult) -> tuple[Any, ...]:
        if self._sqlite:
            flaky: Any = int(r.flaky)
            started: Any = sqlite_datetime(r.started_at)
            completed: Any = sqlite_datetime(r.completed_at)
        else:
            flaky, started, completed = r.flaky, r.started_at, r.completed_at
        return (
            self._run, r.idx, r.parent_idx, r.case.id, r.status, r.duration_ms, r.message, r.error_type,
            r.failure_category, r.stack_trace, r.stdout, r.stderr, _json(r.properties),
            len(r.attempts) if r.attempts else 1, _json(r.attempts), flaky, r.worker, started, completed,
            r.log_ref, _json(r.attachments),
        )


def _copy_postgresql(conn: Any, cases: list[tuple[Any, ...]], rows: list[tuple[Any, ...]]) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        if cases:
            cur.executemany(_PG_CASES, cases)
        with cur.copy(f"COPY case_results ({', '.join(RESULT_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def add_to_counters(session: Session, *, run_id: str | uuid.UUID, delta: Counters) -> None:
    """Apply a change to a run's top-level counters (negative values undo a count)."""
    if not any((delta.tests, delta.passed, delta.failed, delta.errors, delta.skipped, delta.flaky, delta.infra)):
        return
    if isinstance(run_id, uuid.UUID):
        run_id = run_id.hex if session.get_bind().dialect.name == "sqlite" else str(run_id)
    session.connection().execute(
        text(_COUNTERS),
        {
            "tests": delta.tests, "passed": delta.passed, "failed": delta.failed, "errors": delta.errors,
            "skipped": delta.skipped, "flaky": delta.flaky, "infra": delta.infra, "run_id": run_id,
        },
    )


def write_results(
    session: Session, *, run_id: uuid.UUID, workspace_id: int, results: Sequence[NewResult], now: datetime
) -> Counters:
    """Write a batch of results at once; returns what was added to the run's counters."""
    writer = ResultWriter(session, run_id=run_id, workspace_id=workspace_id, now=now)
    for r in results:
        writer.add(r)
    writer.flush()
    return writer.counters


def insert_if_absent(session: Session, table: Any, values: dict[str, Any], *, keys: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: first writer wins, concurrent writers don't fail."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=list(keys)))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=list(keys)))
