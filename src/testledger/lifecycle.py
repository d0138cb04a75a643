"""The run lifecycle in one place: statuses, legal transitions, and how a result is derived."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from testledger.errors import Conflict, Invalid

if TYPE_CHECKING:
    from datetime import datetime

PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT = "pending", "running", "completed", "cancelled", "timeout"
STATUSES = (PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT)
TERMINAL = frozenset({COMPLETED, CANCELLED, TIMEOUT})

#: A completed run's result and a case result's status share one vocabulary.
PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
RESULTS = (PASSED, FAILED, ERROR, SKIPPED)
CASE_STATUSES = RESULTS
#: Case statuses that count as a failure of the test.
NOT_PASSED = (FAILED, ERROR)
#: The failure category of a case that failed for reasons outside the test (see `failures.categorise`).
INFRASTRUCTURE = "infrastructure"
FAILURE_CATEGORIES = ("assertion", "timeout", "error", INFRASTRUCTURE)
TRIGGER_MANUAL, TRIGGER_GATEKEEPER, TRIGGER_API = "manual", "gatekeeper", "api"
TRIGGERS = (TRIGGER_MANUAL, "plan", TRIGGER_GATEKEEPER, TRIGGER_API)
#: The `test_runs` view's statuses (`view_status`); RUNNING covers pending and running.
VIEW_RUNNING, VIEW_PASSED, VIEW_FAILED, VIEW_CANCELLED, VIEW_ERROR = "running", PASSED, FAILED, CANCELLED, ERROR
#: Why a case never started, by what stopped its run early. One rule for all three: such a case is
#: SKIPPED with this reason (a case that was running when the run's time limit hit it FAILED, timeout).
NOT_RUN = {
    "timeout": "not run: run time limit reached",
    "cancelled": "not run: cancelled",
    "fail_fast": "not run: fail_fast",
}

#: pending may end without running: cancelled before start, or completed with nothing run (skipped),
#: e.g. `runs start` followed by `runs finish` when the CI job had nothing to test.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, COMPLETED, CANCELLED, TIMEOUT}),
    RUNNING: frozenset({COMPLETED, CANCELLED, TIMEOUT}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset(),
    TIMEOUT: frozenset(),
}


def check_transition(key: str, current: str, target: str) -> None:
    """Raise `Conflict` unless `current -> target` is legal; terminal runs never change."""
    if target not in STATUSES:
        raise Invalid(f"unknown run status '{target}' (expected one of {', '.join(STATUSES)})")
    if target in TRANSITIONS[current]:
        return
    if current in TERMINAL:
        raise Conflict(f"run '{key}' is already {current}; a finished run cannot change")
    allowed = ", ".join(sorted(TRANSITIONS[current]))
    raise Conflict(f"run '{key}' cannot go from {current} to {target} (allowed: {allowed})")


@dataclass(slots=True)
class Totals:
    """Test counts of a run (or of a batch of results on its way to one): leaf results, never groups."""

    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    infra_faults: int = 0

    def add(self, other: Totals) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def count(self, status: str, *, flaky: bool, category: str | None, sign: int = 1) -> None:
        """Count one result (sign=-1 takes one back, when a rerun replaces it)."""
        self.tests += sign
        if status == PASSED:
            self.passed += sign
        elif status == FAILED:
            self.failed += sign
        elif status == ERROR:
            self.errors += sign
        else:
            self.skipped += sign
        self.flaky += sign * flaky
        # Only a case that could not give a verdict (an error of the infrastructure) makes a run
        # ERROR; a test's own failure, whatever its category, makes it FAILED.
        self.infra_faults += sign * (status == ERROR and category == INFRASTRUCTURE)


def is_group(status: str, *, has_tests: bool, a_test_failed: bool) -> bool:
    """Whether a pipeline case with sub-results is only the group of its tests (not counted; its
    tests are). One that failed while none of its tests did (pytest crashed or was interrupted after
    they passed) counts as a test itself, so the tests that passed never hide its failure."""
    return has_tests and (status not in NOT_PASSED or a_test_failed)


def derive_result(totals: Totals, *, run_error: bool = False) -> str:
    """The seed's rule: an infrastructure fault -> error; any failure -> failed; nothing ran ->
    skipped; otherwise passed. A case `error` (an exception in the test) is a test failure, not an
    infrastructure fault: only an `error` case of category `infrastructure` (it could not run, or
    its environment failed it) or a run-level fault makes `error`; a `failed` case never does."""
    if run_error or totals.infra_faults:
        return ERROR
    if totals.failed or totals.errors:
        return FAILED
    if totals.tests == 0 or totals.passed == 0:
        return SKIPPED
    return PASSED


def elapsed_ms(started: datetime | None, ended: datetime) -> int:
    """A run's duration: from its start (0 for a run that never started) to its end."""
    return 0 if started is None else max(0, int((ended - started).total_seconds() * 1000))


def view_status(status: str, result: str | None) -> str:
    """The `test_runs` view's single status: running, passed, failed, cancelled or error.

    A completed run whose result is `skipped` (nothing ran) reads as `passed` there: the seed's rule
    "all test cases pass" holds vacuously, and the view has no word for skipped. The lifecycle
    `result` keeps the distinction for anyone who needs it.
    """
    if status in (PENDING, RUNNING):
        return VIEW_RUNNING
    if status == CANCELLED:
        return VIEW_CANCELLED
    if status == TIMEOUT or result == ERROR:
        return VIEW_ERROR
    return VIEW_FAILED if result == FAILED else VIEW_PASSED


ENVIRONMENT_ALIASES = {"production": "prod", "development": "dev"}


def normalise_environment(name: str, allowed: list[str]) -> str:
    env = ENVIRONMENT_ALIASES.get(name.strip().lower(), name.strip().lower())
    if env not in allowed:
        raise Invalid(
            f"unknown environment '{name}' (expected one of {', '.join(allowed)}; "
            "add more with TESTLEDGER_ENVIRONMENTS)"
        )
    return env
