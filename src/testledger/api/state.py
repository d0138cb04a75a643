"""What one running API application holds: settings, the store, the signing key, its runs and its metrics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from testledger.api.metrics import Metrics
from testledger.db.engine import Store
from testledger.execute.executor import RunRequest
from testledger.execute.local import LocalExecutor
from testledger.execute.logstore import FileLogStore
from testledger.services.signing import SigningKey
from testledger.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    store: Store
    signing_key: SigningKey
    auth: bool
    metrics: Metrics = field(default_factory=Metrics)
    _executor: LocalExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _submitted: set[str] = field(default_factory=set)

    @property
    def log_store(self) -> FileLogStore:
        return FileLogStore(self.settings.logs_dir)

    @property
    def executor(self) -> LocalExecutor:
        """The in-process executor runs started over HTTP use (created on the first one)."""
        with self._lock:
            if self._executor is None:
                self._executor = LocalExecutor(
                    self.store, logs=self.log_store, attachments_root=self.settings.attachments_dir,
                    heartbeat_seconds=self.settings.heartbeat_seconds,
                )
            return self._executor

    def start_run(self, key: str, overrides: dict[str, str]) -> None:
        self.executor.submit(RunRequest(run_key=key, overrides=overrides, workdir=Path.cwd()))
        self._submitted.add(key)

    def runs_here(self) -> set[str]:
        """Runs this process executes: their cancel reaches the executor at once, not at its next sync."""
        return set(self._submitted)
