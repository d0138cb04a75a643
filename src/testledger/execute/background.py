"""Runs started by a long-lived process (the API or MCP server): executed on threads of that process and
answered at once; runs still going when the process stops are cancelled, never left running."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from testledger.db.engine import Store
from testledger.execute.executor import RunRequest
from testledger.execute.local import LocalExecutor
from testledger.execute.logstore import FileLogStore
from testledger.provenance import Provenance
from testledger.schemas import ExecutionOut
from testledger.settings import Settings

if TYPE_CHECKING:
    from testledger.services.rerun import RerunOut

log = logging.getLogger(__name__)


class BackgroundRuns:
    """One in-process executor shared by every request of a server process (created on first use)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self._executor: LocalExecutor | None = None
        self._lock = threading.Lock()
        self._keys: set[str] = set()

    @property
    def executor(self) -> LocalExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = LocalExecutor(
                    self.store, logs=FileLogStore(self.settings.logs_dir),
                    attachments_root=self.settings.attachments_dir,
                    heartbeat_seconds=self.settings.heartbeat_seconds,
                )
            return self._executor

    def start(
        self, *, workspace: str, pipeline_key: str, provenance: Provenance, environment: str | None,
        parameters: dict[str, str],
    ) -> ExecutionOut:
        """Create a run of the stored pipeline, start it on this process's executor, return it at once."""
        from testledger.services.execution import create_pipeline_run
        from testledger.services.runs import get_execution

        with self.store.write() as db:
            key = create_pipeline_run(
                db, workspace=workspace, pipeline_key=pipeline_key, provenance=provenance,
                allowed_environments=self.settings.environments, environment=environment, overrides=parameters,
            ).execution_id
        self._submit(RunRequest(run_key=key, overrides=parameters, workdir=Path.cwd()))
        log.info("started run %s of pipeline %s for %s", key, pipeline_key, provenance.actor)
        with self.store.read() as db:
            return get_execution(db, workspace=workspace, key=key, with_cases=False)

    def rerun(
        self, *, workspace: str, key: str, provenance: Provenance, failed_only: bool, parameters: dict[str, str],
    ) -> tuple[ExecutionOut, RerunOut]:
        """Create a rerun of finished run `key` (`services.rerun.rerun_cases`), start it on this process's
        executor, return it at once with the cases it executes."""
        from testledger.services.rerun import rerun_cases
        from testledger.services.runs import get_execution

        with self.store.write() as db:
            launched = rerun_cases(
                db, workspace=workspace, key=key, provenance=provenance,
                allowed_environments=self.settings.environments, workdir=Path.cwd(), failed_only=failed_only,
                parameters=parameters,
            )
        self._submit(RunRequest(run_key=launched.run_key, overrides=launched.overrides, workdir=launched.workdir))
        log.info("started run %s, a rerun of %s, for %s", launched.run_key, key, provenance.actor)
        with self.store.read() as db:
            return get_execution(db, workspace=workspace, key=launched.run_key, with_cases=False), launched

    def _submit(self, request: RunRequest) -> None:
        self.executor.submit(request)
        with self._lock:
            self._keys.add(request.run_key)

    def here(self, key: str) -> bool:
        """Whether this process executes the run: its cancel reaches the executor at once."""
        with self._lock:
            return key in self._keys

    def cancel(self, key: str) -> ExecutionOut:
        return self.executor.cancel(key)

    def shutdown(self, wait_s: float = 10.0) -> None:
        """Cancel the runs of this process that are still going and wait a little for them to end."""
        with self._lock:
            keys, self._keys = sorted(self._keys), set()
            executor = self._executor
        if executor is None:
            return
        for key in keys:
            if not executor.wait(key, timeout=0):
                log.info("cancelling run %s: the server is stopping", key)
                executor.cancel(key)
        for key in keys:
            try:
                executor.wait(key, timeout=wait_s)
            except Exception:  # the run's own failure was recorded by its executor; shutting down goes on
                log.exception("run %s failed while the server was stopping", key)
