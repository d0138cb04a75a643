"""From parsed cases to stored results: identity, failure category, attempts, and rerun merging."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from testledger.caseid import case_id, reported_identity
from testledger.db.rows import NewCase, NewResult, ResultBuffer, attempt_count
from testledger.failures import categorise
from testledger.ingest.model import Attempt, ParsedCase
from testledger.lifecycle import Totals

#: Attempts of one result kept in full (`case_results.attempts`); later ones are counted in
#: `attempt_count` and their time summed, and the result's own fields are the last attempt's. A report
#: that lists one test 20,000 times stays linear to ingest and bounded to store.
MAX_ATTEMPTS_KEPT = 50
#: How much of a message the failure category looks at: the evidence is at its start, and the
#: category's patterns must not run over megabytes of hostile text.
CATEGORY_TEXT_CHARS = 8192


def attempt_dict(a: Attempt | ParsedCase | NewResult) -> dict[str, Any]:
    """One try as stored in `case_results.attempts`: its status and whatever else it has."""
    data: dict[str, Any] = {"status": a.status}
    for name in ("duration_ms", "message", "error_type", "stack_trace", "stdout", "stderr"):
        value = getattr(a, name)
        if value is not None:
            data[name] = value
    return data


def to_result(case: ParsedCase, idx: int, workspace_id: int) -> NewResult:
    """The result to store for a parsed case (once per ingested case: kept to plain steps).

    The records are built with positional arguments, in their fields' order: keywords cost 3x as much
    to pass (0.58 against 1.75 us for a NewResult here), about a tenth of a case's whole conversion."""
    suite, classname, name = case.suite, case.classname, case.name
    identity = reported_identity(suite, classname, name)
    # NewCase(id, identity, kind, name, key, suite, classname)
    new_case = NewCase(case_id(workspace_id, identity), identity, "reported", name, None, suite, classname)
    status, message = case.status, case.message
    category = None
    if status == "failed" or status == "error":  # only a failure has a category
        category = categorise(status, message=message[:CATEGORY_TEXT_CHARS] if message else None,
                              error_type=case.error_type, stack_trace=case.stack_trace)
    attempts = case.attempts
    # NewResult(idx, case, status, parent_idx, duration_ms, message, error_type, failure_category, stack_trace,
    #           stdout, stderr, properties, attempts, attempt_count, flaky, worker, started_at, completed_at,
    #           log_ref, attachments)
    return NewResult(
        idx, new_case, status, None, case.duration_ms, message, case.error_type, category, case.stack_trace,
        case.stdout, case.stderr, case.properties, [attempt_dict(a) for a in attempts] if attempts else None, None,
        case.flaky, None, None, None, None, case.attachments or None,
    )


def _attempts_of(r: NewResult) -> list[dict[str, Any]]:
    return r.attempts if r.attempts else [attempt_dict(r)]


def _time_of(r: NewResult) -> float | None:
    """Time spent in all of the result's tries: once merged, its duration already is that sum."""
    if r.attempts and r.attempt_count is None:
        durations = [a["duration_ms"] for a in r.attempts if a.get("duration_ms") is not None]
        return sum(durations) if durations else None
    return r.duration_ms


def merge_rerun(earlier: NewResult, later: NewResult) -> None:
    """Fold a later entry of the same test into the earlier result as further attempts.

    The last attempt decides the outcome; the time spent is the sum of all attempts; the case is
    flaky when its attempts disagree (e.g. failed, then passed on a rerun). The first
    `MAX_ATTEMPTS_KEPT` attempts are kept in full and the rest counted, so each merge costs the same.
    """
    first_merge = earlier.attempt_count is None
    tries = attempt_count(earlier) + attempt_count(later)
    times = [t for t in (_time_of(earlier), _time_of(later)) if t is not None]
    kept = _attempts_of(earlier)
    statuses = {a["status"] for a in kept} | {a["status"] for a in _attempts_of(later)}
    if len(kept) < MAX_ATTEMPTS_KEPT:
        kept = [*kept, *_attempts_of(later)[: MAX_ATTEMPTS_KEPT - len(kept)]]
    for name in ("status", "message", "error_type", "failure_category", "stack_trace", "stdout", "stderr"):
        setattr(earlier, name, getattr(later, name))
    earlier.duration_ms = sum(times) if times else None
    earlier.attempts = kept
    earlier.attempt_count = tries
    earlier.flaky = earlier.flaky or later.flaky or len(statuses) > 1
    if later.properties:
        earlier.properties = {**(earlier.properties or {}), **later.properties}
    if later.attachments:
        # Copied on the first merge (the list may be the parser's), extended in place after that:
        # copying what earlier entries gathered would make each merge cost more than the last.
        earlier.attachments = [*(earlier.attachments or [])] if first_merge else earlier.attachments or []
        earlier.attachments.extend(later.attachments)


#: Called for the rare rerun whose first attempt was already written: (its index, the later entry).
StoredRerun = Callable[[int, NewResult], None]


def stream_results(
    cases: Iterable[ParsedCase], buffer: ResultBuffer, *, first_idx: int, workspace_id: int,
    stored_rerun: StoredRerun,
) -> tuple[int, Totals]:
    """Feed parsed cases to `buffer` as results; returns the next index and the raw entry counts.

    A test that appears again after it failed or errored in the same report is a rerun (pytest-
    rerunfailures, gotestsum --rerun-fails, ...) and becomes another attempt of the first result.
    A repeat after a pass or skip is not a retry (retries only follow failures): it is kept as a
    result of its own, as parameterised tests with identical names need.
    """
    entries = Totals()
    retryable: dict[int, int] = {}  # case id -> index of its result while that result is failing
    idx = first_idx
    for case in cases:
        result = to_result(case, idx, workspace_id)
        if result.status == "passed" and not result.flaky:  # most cases: two counters
            entries.tests += 1
            entries.passed += 1
        else:
            entries.count(result.status, flaky=result.flaky, category=result.failure_category)
        earlier_idx = retryable.pop(result.case.id, None)
        if earlier_idx is None:
            buffer.add(result)
            idx += 1
            earlier_idx = result.idx
        else:
            earlier = buffer.buffered(result.case.id)
            if earlier is not None and earlier.idx == earlier_idx:
                merge_rerun(earlier, result)
            else:  # the earlier result left the buffer, so it was written (or sent) before this one
                stored_rerun(earlier_idx, result)
        if result.status in ("failed", "error"):
            retryable[result.case.id] = earlier_idx
    return idx, entries
