"""One try of a case: what every case kind returns, and the context it runs in."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testledger.attempts import attempt_dict
from testledger.execute.logstore import CaseOutput
from testledger.execute.masking import Masker
from testledger.execute.process import ProcessGroups
from testledger.failures import categorise

if TYPE_CHECKING:  # a pytest case's tests, read by the JUnit parser (imported when a pytest case runs)
    from testledger.ingest.model import ParsedCase


@dataclass(slots=True)
class CaseContext:
    """Everything a case kind needs for one attempt."""

    output: CaseOutput
    workdir: Path
    env: dict[str, str]
    #: The case's attachments directory (`TESTLEDGER_ATTACHMENTS_DIR`).
    attachments: str
    groups: ProcessGroups
    stop: threading.Event
    grace: float
    #: `time.monotonic()` when this attempt must end (its own time limit or the run's), or None.
    deadline: float | None
    #: The attempt's own time limit in seconds, for messages.
    limit_s: float | None
    masker: Masker = field(default_factory=lambda: Masker(()))


@dataclass(slots=True)
class AttemptResult:
    status: str
    started_at: datetime
    duration_ms: float = 0.0
    message: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None
    failure_category: str | None = None
    #: The run was cancelled or halted while this attempt ran; it did not finish on its own.
    stopped: bool = False
    #: False for a case that never started (the run stopped first): it is SKIPPED, never FAILED.
    started: bool = True
    sub_cases: list[ParsedCase] = field(default_factory=list)

    def decide_category(self, *, timed_out: bool = False, infrastructure: bool = False, evidence: str = "") -> None:
        """Set the failure category from evidence: time limit, failure to start, messages, output."""
        self.failure_category = categorise(
            self.status, message=self.message, error_type=self.error_type,
            stack_trace=self.stack_trace or evidence or None, timed_out=timed_out, infrastructure=infrastructure,
        )

    def as_attempt(self) -> dict[str, Any]:
        return attempt_dict(self)


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "its time limit"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60 or seconds % 60:
        return f"{seconds:g}s"
    return f"{seconds / 60:g}m"


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
