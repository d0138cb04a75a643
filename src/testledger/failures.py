"""Failure categories decided from evidence: exception type, message, exit code, signal, time limit."""

from __future__ import annotations

import re

ASSERTION, TIMEOUT, ERROR, INFRASTRUCTURE = "assertion", "timeout", "error", "infrastructure"

# Matched against lower-cased text: with re.IGNORECASE the engine cannot skip ahead on the
# alternatives' first characters, and one search of a 4 KB traceback cost ~100 us (a third of ingest).
_TIMEOUT = re.compile(r"\btimed? ?out\b|timeouterror|timeoutexception|deadline exceeded|exceeded .*time limit")
_INFRA = re.compile(
    r"connection refused|econnrefused|connectionrefusederror|"
    r"name or service not known|temporary failure in name resolution|getaddrinfo|enotfound|"
    r"nodename nor servname|could not resolve host|no route to host|network is unreachable|"
    r"no space left on device|enospc|disk full|"
    r"out of memory|memoryerror|oomkilled|cannot allocate memory|enomem"
)
_ASSERTION = re.compile(r"assert|expect", re.IGNORECASE)


def categorise(
    status: str,
    *,
    message: str | None = None,
    error_type: str | None = None,
    stack_trace: str | None = None,
    timed_out: bool = False,
    infrastructure: bool = False,
) -> str | None:
    """The category of a non-passed case, or None for passed and skipped cases.

    Order matters: a known time limit or a failure to even start wins; then the text decides
    (a connection refused inside an assertion message is still an infrastructure fault); then the
    kind of outcome: JUnit's <failure> means an assertion by convention, <error> an exception.
    """
    if status not in ("failed", "error"):
        return None
    if timed_out:
        return TIMEOUT
    if infrastructure:
        return INFRASTRUCTURE
    short = f"{error_type or ''}\n{message or ''}".lower()
    if _INFRA.search(short) or (stack_trace and _INFRA.search(stack_trace[:4096].lower())):
        return INFRASTRUCTURE
    if _TIMEOUT.search(short):
        return TIMEOUT
    if status == "failed" or _ASSERTION.search(error_type or ""):
        return ASSERTION
    return ERROR
