"""The `Executor` interface every executor implements (local now, Celery workers later), and its events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from testledger.schemas import ExecutionOut


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What an executor needs beyond the stored run: values that must not be stored (secret
    parameter overrides), where relative paths start, and a parallelism override."""

    run_key: str
    overrides: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=Path.cwd)
    parallelism: int | None = None


@dataclass(frozen=True, slots=True)
class CaseStarted:
    index: int
    key: str
    name: str


@dataclass(frozen=True, slots=True)
class CaseFinished:
    index: int
    key: str
    name: str
    status: str
    duration_ms: float | None
    flaky: bool = False
    attempts: int = 1
    error: str | None = None


RunEvent = CaseStarted | CaseFinished
#: Called from executor threads as cases start and finish; must be quick and thread-safe.
EventSink = Callable[[RunEvent], None]


class Executor(Protocol):
    """Executes `pending` runs. Everything another process needs to watch or steer a run (status,
    cancel requests, heartbeats, results) goes through the store, so `status` and `cancel` work
    the same from any process, for any executor."""

    def submit(self, request: RunRequest) -> None:
        """Start executing a pending run; returns once the executor has taken it."""
        ...

    def cancel(self, run_key: str) -> ExecutionOut:
        """Ask for the run to stop: a pending run is cancelled at once, a running one at its next heartbeat."""
        ...

    def status(self, run_key: str) -> ExecutionOut:
        """The run as stored, with its finished cases."""
        ...
