"""Turning a finished pipeline case into case results: the case itself, its attempts, and pytest sub-results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from testledger.caseid import case_id, reported_identity
from testledger.db.rows import NewCase, NewResult
from testledger.execute.masking import Masker
from testledger.execute.plan import RunPlan
from testledger.failures import categorise
from testledger.lifecycle import is_group

if TYPE_CHECKING:
    from testledger.execute.local import CaseReport
    from testledger.ingest.model import ParsedCase


def case_results(report: CaseReport, *, plan: RunPlan, worker: str, next_sub: int) -> tuple[list[NewResult], int]:
    """The pipeline case's result (index = its position) and its sub-results (indexes from `next_sub`)."""
    mask = plan.masker
    final, first = report.attempts[-1], report.attempts[0]
    retried = len(report.attempts) > 1
    top = NewResult(
        idx=report.case.index, case=report.case.case, status=final.status,
        duration_ms=round(final.duration_ms, 3), message=mask.text(final.message),
        error_type=final.error_type, failure_category=final.failure_category,
        stack_trace=mask.text(final.stack_trace), stdout=report.output,
        attempts=[mask.data(a.as_attempt()) for a in report.attempts] if retried else None,
        flaky=final.status == "passed" and retried, worker=worker,
        started_at=first.started_at, completed_at=report.completed_at or first.started_at,
        log_ref=report.log_ref, attachments=mask.paths(report.attachments or []) or None, group=is_group(
            final.status, has_tests=bool(final.sub_cases),
            a_test_failed=any(sub.status in ("failed", "error") for sub in final.sub_cases),
        ),
    )
    results = [top]
    for parsed in final.sub_cases:
        results.append(_sub_result(parsed, idx=next_sub, parent=report.case.index, plan=plan, worker=worker))
        next_sub += 1
    return results, next_sub


def _sub_result(parsed: ParsedCase, *, idx: int, parent: int, plan: RunPlan, worker: str) -> NewResult:
    mask: Masker = plan.masker
    identity = reported_identity(parsed.suite, parsed.classname, parsed.name)
    case = NewCase(
        id=case_id(plan.workspace_id, identity), identity=identity, kind="reported", name=parsed.name,
        suite=parsed.suite, classname=parsed.classname,
    )
    message, stack = mask.text(parsed.message), mask.text(parsed.stack_trace)
    return NewResult(
        idx=idx, parent_idx=parent, case=case, status=parsed.status, duration_ms=parsed.duration_ms,
        message=message, error_type=parsed.error_type, stack_trace=stack,
        failure_category=categorise(parsed.status, message=message, error_type=parsed.error_type, stack_trace=stack),
        stdout=mask.text(parsed.stdout), stderr=mask.text(parsed.stderr), properties=parsed.properties,
        attempts=[
            {"status": a.status, "duration_ms": a.duration_ms, "message": mask.text(a.message),
             "error_type": a.error_type}
            for a in parsed.attempts
        ] or None,
        flaky=parsed.flaky, worker=worker, attachments=mask.data(parsed.attachments) or None,
    )

