"""One JUnit ``<testcase>`` element → ParsedCase: status precedence, output, properties, reruns."""

from __future__ import annotations

from testledger.ingest.model import Attempt, ParsedCase
from testledger.ingest.parsers.values import seconds_to_ms, to_int
from testledger.ingest.parsers.xml_safety import Element, local_name, text_of

#: ``<testcase status="...">`` words that mean the test did not run (GoogleTest, tst, doctest).
SKIP_STATUS_WORDS = frozenset({"disabled", "notrun", "skipped", "ignored", "skip", "not_run", "not run"})

#: Surefire's nested attempt elements and the status of the attempt each one records.
ATTEMPT_TAGS = {
    "flakyFailure": "failed",
    "flakyError": "error",
    "rerunFailure": "failed",
    "rerunError": "error",
}

_PROBLEM_STATUS = {"error": "error", "failure": "failed"}


def build_case(elem: Element, *, suite: str, nanos: bool) -> ParsedCase:
    """Read one ``<testcase>``; its children are still attached (the caller frees them after)."""
    get = elem.get
    case = ParsedCase(
        get("name") or "",
        "passed",
        suite,
        get("classname") or get("class") or "",
        seconds_to_ms(get("time"), nanos=nanos),
    )
    file = get("file")
    if file is not None:
        case.file = file
        case.line = to_int(get("line") or get("lineno"))
    if len(elem):
        _read_children(elem, case)
    word = get("status")
    if word is not None and word.lower() in SKIP_STATUS_WORDS:
        _force_skipped(case, word)
    elif get("result") == "skipped":
        _force_skipped(case, "skipped")
    return case


def _force_skipped(case: ParsedCase, word: str) -> None:
    case.status = "skipped"
    if case.properties is None:
        case.properties = {}
    case.properties["original_status"] = word


def _read_children(elem: Element, case: ParsedCase) -> None:
    problems: list[Element] = []
    skipped: Element | None = None
    reruns: list[Element] = []
    for child in elem:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        tag = local_name(tag)
        if tag == "failure" or tag == "error":
            problems.append(child)
        elif tag == "skipped" or tag == "skip":
            skipped = child
        elif tag == "system-out":
            case.stdout = _join(case.stdout, text_of(child))
        elif tag == "system-err":
            case.stderr = _join(case.stderr, text_of(child))
        elif tag in ATTEMPT_TAGS:
            reruns.append(child)
        elif tag == "properties" or tag == "property":
            case.properties = read_properties(child, case.properties)
    if problems:
        _apply_problems(case, problems)
    elif skipped is not None:
        case.status = "skipped"
        case.message = skipped.get("message") or text_of(skipped) or None
    if reruns:
        _apply_attempts(case, reruns)


def _apply_problems(case: ParsedCase, problems: list[Element]) -> None:
    """Error outranks failure; the first element of the winning kind supplies the message."""
    kinds = [local_name(str(p.tag)) for p in problems]
    kind = "error" if "error" in kinds else "failure"
    first = problems[kinds.index(kind)]
    case.status = _PROBLEM_STATUS[kind]
    case.error_type = first.get("type") or None
    texts = [text for text in (text_of(p) for p in problems) if text and text.strip()]
    if texts:
        case.stack_trace = "\n\n".join(texts) if len(texts) > 1 else texts[0]
    case.message = first.get("message") or first_line(text_of(first))


def first_line(text: str | None) -> str | None:
    """The first non-blank line of a failure text, used when no ``message`` attribute exists."""
    if not text:
        return None
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def _apply_attempts(case: ParsedCase, reruns: list[Element]) -> None:
    """Surefire: flaky* are earlier failed tries of a test that passed; rerun* are retries of a
    test whose own <failure>/<error> is the first try. The case status is never changed by them,
    as in Surefire: a passing case with only rerun* elements is read like a flaky one."""
    final = Attempt(
        status=case.status,
        duration_ms=case.duration_ms,
        message=case.message,
        error_type=case.error_type,
        stack_trace=case.stack_trace,
        stdout=case.stdout,
        stderr=case.stderr,
    )
    if case.status == "passed":
        attempts = [_attempt(r) for r in reruns]
        attempts.append(final)
    else:
        attempts = [_attempt(r) for r in reruns if local_name(str(r.tag)).startswith("flaky")]
        attempts.append(final)
        attempts.extend(_attempt(r) for r in reruns if local_name(str(r.tag)).startswith("rerun"))
    case.attempts = attempts
    case.flaky = is_flaky(attempts)


def is_flaky(attempts: list[Attempt]) -> bool:
    """Flaky means the tries disagree on pass/no-pass; a failure then an error is not flaky."""
    statuses = {attempt.status for attempt in attempts}
    return "passed" in statuses and not statuses.isdisjoint(("failed", "error"))


def _attempt(elem: Element) -> Attempt:
    attempt = Attempt(
        status=ATTEMPT_TAGS[local_name(str(elem.tag))],
        duration_ms=seconds_to_ms(elem.get("time")),
        message=elem.get("message") or None,
        error_type=elem.get("type") or None,
    )
    for child in elem:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        tag = local_name(tag)
        if tag == "stackTrace":
            attempt.stack_trace = text_of(child)
        elif tag == "system-out":
            attempt.stdout = text_of(child)
        elif tag == "system-err":
            attempt.stderr = text_of(child)
    if attempt.stack_trace is None and elem.text and elem.text.strip():
        attempt.stack_trace = elem.text
    return attempt


def read_properties(elem: Element, into: dict[str, str] | None) -> dict[str, str] | None:
    """``<properties><property/>...</properties>`` or a bare ``<property/>`` (cocotb) → dict."""
    found = into if into is not None else {}
    items = [elem] if local_name(str(elem.tag)) == "property" else list(elem)
    for item in items:
        if not isinstance(item.tag, str) or local_name(item.tag) != "property":
            continue
        key = item.get("name")
        if key is None:
            continue
        value = item.get("value")
        if value is None:
            value = text_of(item) or ""
        found[key] = value
    return found or into


def _join(existing: str | None, more: str | None) -> str | None:
    if existing is None:
        return more
    if more is None:
        return existing
    return existing + more
