"""The run state machine and result derivation."""

from __future__ import annotations

import pytest

from testledger import lifecycle
from testledger.errors import Conflict, Invalid
from testledger.lifecycle import Totals, derive_result, view_status


@pytest.mark.parametrize(
    ("current", "target"),
    [("pending", "running"), ("running", "completed"), ("running", "cancelled"), ("running", "timeout"),
     ("pending", "cancelled"), ("pending", "completed")],
)
def test_legal_transitions_pass(current: str, target: str) -> None:
    lifecycle.check_transition("R-1", current, target)  # raises Conflict when illegal
    assert target in lifecycle.TRANSITIONS[current]


def test_the_transition_table_is_exactly_the_documented_lifecycle() -> None:
    """pending -> running -> completed, or cancelled/timeout; pending may end without running."""
    legal = {(a, b) for a, targets in lifecycle.TRANSITIONS.items() for b in targets}
    assert legal == {
        ("pending", "running"), ("pending", "completed"), ("pending", "cancelled"), ("pending", "timeout"),
        ("running", "completed"), ("running", "cancelled"), ("running", "timeout"),
    }
    for current, target in {(a, b) for a in lifecycle.STATUSES for b in lifecycle.STATUSES} - legal:
        with pytest.raises(Conflict):
            lifecycle.check_transition("R-1", current, target)


@pytest.mark.parametrize("terminal", ["completed", "cancelled", "timeout"])
@pytest.mark.parametrize("target", ["pending", "running", "completed", "cancelled"])
def test_terminal_runs_never_change(terminal: str, target: str) -> None:
    with pytest.raises(Conflict, match=f"run 'R-1' is already {terminal}"):
        lifecycle.check_transition("R-1", terminal, target)


def test_running_cannot_go_back_to_pending() -> None:
    with pytest.raises(Conflict, match="cannot go from running to pending"):
        lifecycle.check_transition("R-1", "running", "pending")


def test_unknown_status_names_the_choices() -> None:
    with pytest.raises(Invalid, match=r"unknown run status 'done'.*pending, running"):
        lifecycle.check_transition("R-1", "running", "done")


@pytest.mark.parametrize(
    ("totals", "run_error", "expected"),
    [
        (Totals(tests=3, passed=3), False, "passed"),
        (Totals(tests=3, passed=2, failed=1), False, "failed"),
        (Totals(tests=3, passed=2, errors=1), False, "failed"),
        (Totals(tests=3, passed=2, failed=1, infra_faults=1), False, "error"),
        (Totals(tests=3, passed=3), True, "error"),
        (Totals(), False, "skipped"),
        (Totals(tests=2, skipped=2), False, "skipped"),
        (Totals(tests=3, passed=1, skipped=2), False, "passed"),
    ],
)
def test_result_follows_the_seed_rule(totals: Totals, run_error: bool, expected: str) -> None:
    assert derive_result(totals, run_error=run_error) == expected


@pytest.mark.parametrize(
    ("status", "result", "view"),
    [
        ("pending", None, "running"), ("running", None, "running"), ("completed", "passed", "passed"),
        ("completed", "failed", "failed"), ("completed", "error", "error"), ("timeout", None, "error"),
        ("cancelled", None, "cancelled"), ("completed", "skipped", "passed"),
    ],
)
def test_test_runs_view_status(status: str, result: str | None, view: str) -> None:
    assert view_status(status, result) == view


def test_production_is_accepted_as_prod() -> None:
    assert lifecycle.normalise_environment("production", ["prod", "ci"]) == "prod"
    with pytest.raises(Invalid, match="unknown environment 'stage' \\(expected one of prod, ci"):
        lifecycle.normalise_environment("stage", ["prod", "ci"])
