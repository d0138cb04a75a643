"""The store side of executing one run: results written in timed batches, heartbeats and cancel polls."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from testledger.db.engine import Store
from testledger.db.retry import write_connection_with_retry
from testledger.db.rows import NewResult
from testledger.db.types import utcnow
from testledger.services import execution


@dataclass
class RunLedger:
    """Buffers results and syncs them with the run's heartbeat: one short write transaction per
    `flush_seconds` (or per `flush_rows` results) instead of one per case."""

    store: Store
    run_key: str
    heartbeat_seconds: float
    flush_seconds: float = 0.25
    flush_rows: int = 500
    cancel_requested: bool = False
    ended_elsewhere: bool = False
    _buffer: list[NewResult] = field(default_factory=list)
    _oldest: float = 0.0
    _last_sync: float = field(default_factory=time.monotonic)

    def start(self, *, executor: str) -> None:
        write_connection_with_retry(
            self.store, lambda db: execution.start_run(db, key=self.run_key, executor=executor),
            what=f"starting run {self.run_key}",
        )
        self._last_sync = time.monotonic()

    def add(self, results: list[NewResult]) -> None:
        if not self._buffer:
            self._oldest = time.monotonic()
        self._buffer.extend(results)

    def next_due(self) -> float:
        """Seconds until the next sync is due (0 when it is due now)."""
        now = time.monotonic()
        due = self._last_sync + self.heartbeat_seconds
        if self._buffer:
            due = min(due, self._oldest + self.flush_seconds)
            if len(self._buffer) >= self.flush_rows:
                return 0.0
        return max(0.0, due - now)

    def sync(self) -> None:
        """Write buffered results, beat, and learn whether a cancel was requested. While the store is
        busy the results stay buffered and the write is tried again (the run goes on meanwhile)."""
        results = self._buffer
        signal = write_connection_with_retry(
            self.store, lambda db: execution.sync_run(db, key=self.run_key, results=results, now=utcnow()),
            what=f"recording results of run {self.run_key}",
        )
        self._buffer = []
        self._last_sync = time.monotonic()
        self.cancel_requested = self.cancel_requested or signal.cancel_requested
        self.ended_elsewhere = signal.ended

    def finish(self, *, status: str, error: str | None = None) -> None:
        if self._buffer and not self.ended_elsewhere:
            self.sync()
        if self.ended_elsewhere:
            return
        write_connection_with_retry(
            self.store, lambda db: execution.finish_run(db, key=self.run_key, status=status, error=error),
            what=f"finishing run {self.run_key}",
        )
