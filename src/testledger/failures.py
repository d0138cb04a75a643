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
# What an exception type's name alone says (lower-cased name). A type that matches none of these
# (RuntimeError, KeyError, OperationalError) says only "an exception": the words may then decide.
_ASSERTION_TYPE = re.compile(r"assert|expectation|comparisonfailure|^failed$|(?:^|\.)failure$")
_TIMEOUT_TYPE = re.compile(r"timeout|timedout|deadlineexceeded")
_INFRA_TYPE = re.compile(
    r"connection(?:refused|reset|aborted)?error|connectexception|gaierror|unknownhostexception|"
    r"noroutetohost|memoryerror|outofmemory"
)
# A message that starts with the exception's type, as pytest's JUnit report writes it
# (`RuntimeError: boom`, or `failed on setup with "RuntimeError: boom"` for a fixture).
_TYPE_IN_MESSAGE = re.compile(
    r'^(?:failed on (?:setup|teardown) with ")?'
    r"((?:[A-Za-z_]\w*\.)*(?:[A-Za-z_]\w*(?:Error|Exception|Failure|Fault|Timeout|Interrupt|Exit)|Failed)):"
)
# Evidence of an assertion in a process's output (a test runner's report, a shell `test`).
_ASSERTION_OUTPUT = re.compile(r"\bassert|assertionerror|assertionfailederror|expectationnotmet|comparisonfailure")


def error_type_in(message: str | None) -> str | None:
    """The exception type a message starts with (`RuntimeError: boom` -> RuntimeError), if any."""
    match = _TYPE_IN_MESSAGE.match(message or "")
    return match[1] if match else None


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

    Order matters: a known time limit or a failure to even start wins; then the exception type
    (given, or at the start of the message) when it says something (an AssertionError whose
    message mentions "Connection refused" is an assertion); then the words of the message and
    trace; then the kind of outcome: a type that says nothing specific is an `error`, and without
    a type JUnit's <failure> means an assertion by convention, <error> an exception.
    """
    if status not in ("failed", "error"):
        return None
    if timed_out:
        return TIMEOUT
    if infrastructure:
        return INFRASTRUCTURE
    kind = error_type or error_type_in(message)
    if kind:
        by_type = _type_category(kind.lower())
        if by_type:
            return by_type
    short = (message or "").lower()
    if _INFRA.search(short) or (stack_trace and _INFRA.search(stack_trace[:4096].lower())):
        return INFRASTRUCTURE
    if _TIMEOUT.search(short):
        return TIMEOUT
    if short.startswith("assert") or "expect(" in short:  # pytest's `assert x == y`, jest's `expect(x)`
        return ASSERTION
    if kind:
        return ERROR
    return ASSERTION if status == "failed" else ERROR


def _type_category(name: str) -> str | None:
    if _ASSERTION_TYPE.search(name):
        return ASSERTION
    if _TIMEOUT_TYPE.search(name):
        return TIMEOUT
    if _INFRA_TYPE.search(name):
        return INFRASTRUCTURE
    return None


def exit_category(output_tail: str) -> str:
    """The category of a process that ran and exited non-zero (or crashed): `assertion` when its
    output shows an assertion failing, else `error`. An exit code is the program's own verdict, so
    words like "connection refused" in its output never make it an infrastructure fault."""
    return ASSERTION if _ASSERTION_OUTPUT.search(output_tail.lower()) else ERROR
