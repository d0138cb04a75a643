"""Case results on their way to the store, and the row tuples the drivers take: no database, and no
SQLAlchemy, so the report parsing process (`ingest/parse_process.py`) starts without importing it.
`db/bulk.py` writes the rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from testledger.lifecycle import Totals
from testledger.textlimits import TextLimits

RESULT_COLUMNS = (
    "run_id", "idx", "parent_idx", "case_id", "status", "duration_ms", "message", "error_type",
    "failure_category", "stack_trace", "stdout", "stderr", "properties", "attempt_count", "attempts",
    "flaky", "worker", "started_at", "completed_at", "log_ref", "attachments",
)
CASE_COLUMNS = ("id", "workspace_id", "identity", "kind", "key", "name", "suite", "classname", "created_at")
# Plain results (`_plain`) are stored by these columns alone on SQLite (`db/bulk.py`).
LEAN_COLUMNS = ("run_id", "idx", "case_id", "status", "duration_ms", "flaky")


def json_text(value: Any) -> str | None:
    """A JSON column's value as the text the drivers store (compact, UTF-8 kept)."""
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sqlite_datetime(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite dialect stores for a UTC datetime, so the driver-level paths agree with it."""
    if value is None:
        return None
    if value.tzinfo is not UTC and value.tzinfo is not None:
        value = value.astimezone(UTC)
    # isoformat is twice as fast as strftime on this hot path and gives the same text; cutting off its
    # "+00:00" costs less than a naive copy of the value.
    return value.isoformat(" ", "microseconds")[:26]


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
    #: How many tries there were, when `attempts` keeps only the first few in full (None: len(attempts)).
    attempt_count: int | None = None
    flaky: bool = False
    worker: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    log_ref: str | None = None
    attachments: list[str] | None = None
    #: A pipeline case whose tests are its sub-results: the tests count, the group does not.
    group: bool = False


def attempt_count(r: NewResult) -> int:
    """How many times the result's test ran (its kept attempts may be fewer)."""
    return r.attempt_count or (len(r.attempts) if r.attempts else 1)


class RowBuilder:
    """Turns results of one run into the row tuples the drivers take (no database needed, so a
    parsing process can build rows while this one writes them).

    Every path that stores results (ingest, executor sub-results, the pytest plugin) comes through
    here, so this is where stored text is capped (`TextLimits`, from the settings by default).
    """

    def __init__(self, *, run_id: uuid.UUID, workspace_id: int, now: datetime, sqlite: bool,
                 stored: Collection[int] = (), limits: TextLimits | None = None) -> None:
        self.sqlite = sqlite
        self.workspace_id = workspace_id
        self.run: Any = run_id.hex if sqlite else run_id  # PostgreSQL's binary COPY takes the UUID itself
        self._created: Any = sqlite_datetime(now) if sqlite else now
        # Ids the caller knows are stored in this transaction; the inserts skip existing cases anyway.
        self._stored = stored
        self._known: set[int] = set()
        self.limits = limits or TextLimits.from_settings()

    def rows(self, results: list[NewResult]) -> Batch:
        cases: list[tuple[Any, ...]] = []
        rows: list[tuple[Any, ...]] = []
        lean: list[tuple[Any, ...]] = []
        counts = Totals()
        known, stored = self._known, self._stored
        case_row, result_row = self._case_row, self._result_row
        run, sqlite = self.run, self.sqlite
        for r in results:
            case = r.case
            if case.id not in known:
                known.add(case.id)
                if case.id not in stored:
                    cases.append(case_row(case))
            if sqlite and _plain(r):
                lean.append((run, r.idx, case.id, r.status, r.duration_ms, 1 if r.flaky else 0))
            else:
                rows.append(result_row(r))
            if not r.group:  # leaf results are the tests, top-level or sub-results
                if r.status == "passed" and not r.flaky:  # most results: two counters
                    counts.tests += 1
                    counts.passed += 1
                else:
                    counts.count(r.status, flaky=r.flaky, category=r.failure_category)
            elif r.status == "error" and r.failure_category == "infrastructure":
                counts.infra_faults += 1  # a group that could not finish still errors its run
        return Batch(cases, rows, counts, lean)

    def forget_known(self) -> None:
        """Send every case again from now on (after a rollback took some of them away)."""
        self._known.clear()

    def _case_row(self, case: NewCase) -> tuple[Any, ...]:
        return (
            case.id, self.workspace_id, case.identity, case.kind, case.key, case.name,
            case.suite, case.classname, self._created,
        )

    def _result_row(self, r: NewResult) -> tuple[Any, ...]:
        # Once per stored result: the common case (no text, no times, no JSON) takes no calls.
        if r.message is not None or r.error_type is not None or r.stack_trace is not None or r.stdout is not None \
                or r.stderr is not None or r.attempts:
            self.limits.cap_result(r)
        started: Any = r.started_at
        completed: Any = r.completed_at
        if self.sqlite:
            flaky: Any = 1 if r.flaky else 0
            if started is not None:
                started = sqlite_datetime(started)
            if completed is not None:
                completed = sqlite_datetime(completed)
        else:
            flaky = r.flaky
        attempts = r.attempts
        properties: Any = r.properties
        attempts_value: Any = attempts
        attachments: Any = r.attachments
        if self.sqlite:  # JSON columns as text; PostgreSQL's binary COPY encodes the objects as jsonb itself
            properties = None if properties is None else json_text(properties)
            attempts_value = None if attempts is None else json_text(attempts)
            attachments = None if attachments is None else json_text(attachments)
        return (
            self.run, r.idx, r.parent_idx, r.case.id, r.status, r.duration_ms, r.message, r.error_type,
            r.failure_category, r.stack_trace, r.stdout, r.stderr, properties,
            r.attempt_count or (len(attempts) if attempts else 1),
            attempts_value, flaky, r.worker, started, completed, r.log_ref, attachments,
        )


def _plain(r: NewResult) -> bool:
    """Whether the result has only the `LEAN_COLUMNS` (the rest NULL, one attempt)."""
    return (r.message is None and r.stack_trace is None and r.stdout is None and r.stderr is None
            and r.error_type is None and r.failure_category is None and r.properties is None and not r.attempts
            and r.attempt_count is None and r.parent_idx is None and r.worker is None and r.started_at is None
            and r.completed_at is None and r.log_ref is None and r.attachments is None)


@dataclass(slots=True)
class Batch:
    """Rows ready for the store: new cases, results, and what they add to the run's counters.

    On SQLite, plain results travel apart in `lean` (`LEAN_COLUMNS`), the others in `rows`
    (`RESULT_COLUMNS`); on PostgreSQL every result is in `rows` (one jsonb document or a binary COPY
    sends a NULL as cheaply as a value).
    Within each list the results keep their order."""

    cases: list[tuple[Any, ...]]
    rows: list[tuple[Any, ...]]
    counts: Totals
    lean: list[tuple[Any, ...]] = field(default_factory=list)


class ResultBuffer:
    """Results waiting to be written in batches of `batch`. Until then a buffered result can still
    change in place (`buffered`), which is how reruns become attempts cheaply."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self._buffer: list[NewResult] = []
        self._by_case: dict[int, NewResult] = {}

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
        if self._buffer:
            results, self._buffer, self._by_case = self._buffer, [], {}
            self._write(results)

    def discard(self) -> None:
        self._buffer, self._by_case = [], {}

    def _write(self, results: list[NewResult]) -> None:
        raise NotImplementedError
