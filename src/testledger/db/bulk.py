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

    def count(self, status: str, *, flaky: bool, category: str | None) -> None:
        self.tests += 1
        if status == "passed":
            self.passed += 1
        elif status == "failed":
            self.failed += 1
        elif status == "error":
            self.errors += 1
        else:
            self.skipped += 1
        self.flaky += flaky
        self.infra += category == "infrastructure"


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
    `batch` rows so memory stays bounded on a 100k-case report.
    """

    session: Session
    run_id: uuid.UUID
    workspace_id: int
    batch: int = 5000
    counters: Counters = field(default_factory=Counters)
    _rows: list[tuple[Any, ...]] = field(default_factory=list)
    _cases: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    _known_cases: set[int] = field(default_factory=set)
    _pending: Counters = field(default_factory=Counters)
    written: int = 0

    def __post_init__(self) -> None:
        self.dialect = self.session.get_bind().dialect.name
        self._sqlite = self.dialect == "sqlite"
        self._run = self.run_id.hex if self._sqlite else str(self.run_id)

    def add(self, r: NewResult, *, now: datetime) -> None:
        case = r.case
        if case.id not in self._known_cases:
            self._known_cases.add(case.id)
            created = sqlite_datetime(now) if self._sqlite else now
            self._cases[case.id] = (
                case.id, self.workspace_id, case.identity, case.kind, case.key, case.name,
                case.suite, case.classname, created,
            )
        if self._sqlite:
            flaky: Any = int(r.flaky)
            started: Any = sqlite_datetime(r.started_at)
            completed: Any = sqlite_datetime(r.completed_at)
        else:
            flaky, started, completed = r.flaky, r.started_at, r.completed_at
        self._rows.append((
            self._run, r.idx, r.parent_idx, case.id, r.status, r.duration_ms, r.message, r.error_type,
            r.failure_category, r.stack_trace, r.stdout, r.stderr, _json(r.properties),
            len(r.attempts) if r.attempts else 1, _json(r.attempts), flaky, r.worker, started, completed,
            r.log_ref, _json(r.attachments),
        ))
        if r.parent_idx is None:
            self._pending.count(r.status, flaky=r.flaky, category=r.failure_category)
        if len(self._rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self._rows and not self._cases:
            return
        conn = self.session.connection()
        if self._sqlite:
            if self._cases:
                conn.exec_driver_sql(_SQLITE_CASES, list(self._cases.values()))
            conn.exec_driver_sql(_SQLITE_RESULTS, self._rows)
        else:
            self._flush_postgresql(conn)
        p = self._pending
        if p.tests:
            conn.execute(
                text(_COUNTERS),
                {
                    "tests": p.tests, "passed": p.passed, "failed": p.failed, "errors": p.errors,
                    "skipped": p.skipped, "flaky": p.flaky, "infra": p.infra, "run_id": self._run,
                },
            )
        for name in ("tests", "passed", "failed", "errors", "skipped", "flaky", "infra"):
            setattr(self.counters, name, getattr(self.counters, name) + getattr(p, name))
        self.written += len(self._rows)
        self._rows.clear()
        self._cases.clear()
        self._pending = Counters()

    def _flush_postgresql(self, conn: Any) -> None:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            if self._cases:
                cur.executemany(_PG_CASES, list(self._cases.values()))
            with cur.copy(f"COPY case_results ({', '.join(RESULT_COLUMNS)}) FROM STDIN") as copy:
                for row in self._rows:
                    copy.write_row(row)


def write_results(
    session: Session, *, run_id: uuid.UUID, workspace_id: int, results: Sequence[NewResult], now: datetime
) -> Counters:
    """Write a batch of results at once; returns what was added to the run's counters."""
    writer = ResultWriter(session, run_id=run_id, workspace_id=workspace_id)
    for r in results:
        writer.add(r, now=now)
    writer.flush()
    return writer.counters
