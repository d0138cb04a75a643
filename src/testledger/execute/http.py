"""The `http` case kind: one request, then assertions on status, JSON body paths, text and latency."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from testledger.execute.attempt import AttemptResult, CaseContext, remaining, seconds_text

#: The default time limit of a request when neither the case nor the run sets one.
DEFAULT_TIMEOUT_S = 30.0
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_BODY_EXCERPT = 4096
_MISSING = object()

if TYPE_CHECKING:
    import httpx


def json_path(document: Any, path: str) -> Any:
    """The value at `$.a.b[0].c`, or `_MISSING`."""
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with '$', got '{path}'")
    position, value = 1, document
    for match in _STEP.finditer(path, 1):
        if match.start() != position:
            raise ValueError(f"cannot read JSON path '{path}' (use $.a.b or $.items[0].id)")
        position = match.end()
        name, index = match.group(1), match.group(2)
        if name is not None and isinstance(value, dict) and name in value:
            value = value[name]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
    if position != len(path):
        raise ValueError(f"cannot read JSON path '{path}' (use $.a.b or $.items[0].id)")
    return value


def _request(ctx: CaseContext, spec: dict[str, Any]) -> tuple[httpx.Response, float]:
    import httpx

    timeout = remaining(ctx.deadline)
    body = spec.get("body")
    content = body if isinstance(body, str) else None
    payload = body if isinstance(body, dict | list) else None
    ctx.output.note(f"> {spec['method']} {spec['url']}")
    started = time.perf_counter()
    response = httpx.request(
        spec["method"], spec["url"], headers=spec.get("headers") or None, content=content, json=payload,
        timeout=DEFAULT_TIMEOUT_S if timeout is None else timeout, follow_redirects=True,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    ctx.output.note(f"< {response.status_code} {response.reason_phrase} ({elapsed_ms:.0f}ms)")
    if response.content:
        ctx.output.note(response.content[:_BODY_EXCERPT].decode("utf-8", "replace"))
    return response, elapsed_ms


def run_http(ctx: CaseContext, spec: dict[str, Any]) -> AttemptResult:
    import httpx  # imported here: a run without http cases does not pay for it

    result = AttemptResult(status="passed", started_at=datetime.now(UTC))
    started = time.perf_counter()
    try:
        response, elapsed_ms = _request(ctx, spec)
    except httpx.TimeoutException as exc:
        result.status, result.error_type = "failed", "TimeoutError"
        result.message = f"no response within {seconds_text(ctx.limit_s)}: {exc}"
        result.decide_category(timed_out=True)
    except (httpx.ConnectError, httpx.NetworkError) as exc:
        result.status, result.error_type = "error", "ConnectionError"
        result.message = f"cannot reach {spec['url']}: {exc}"
        result.decide_category(infrastructure=True)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        result.status, result.error_type, result.message = "error", type(exc).__name__, str(exc)
        result.decide_category()
    else:
        failure = _check(spec.get("expect") or {}, response, elapsed_ms)
        if failure:
            result.status, result.error_type, result.message = "failed", "AssertionError", failure
            result.decide_category()
    result.duration_ms = (time.perf_counter() - started) * 1000
    if result.message:
        ctx.output.note(f"[testledger] {result.error_type}: {result.message}")
    return result


def _check(expect: dict[str, Any], response: httpx.Response, elapsed_ms: float) -> str | None:
    """The first expectation that does not hold, as the message a user reads; None when all hold."""
    status = expect.get("status", 200)
    if response.status_code != status:
        return f"Expected status {status}, got {response.status_code}"
    paths: dict[str, Any] = expect.get("json") or {}
    if paths:
        try:
            document = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return f"Expected a JSON body, got {response.headers.get('content-type', 'no content type')}"
        for path, wanted in paths.items():
            actual = json_path(document, path)
            if actual is _MISSING:
                return f"Expected {path} to be {json.dumps(wanted)}, but it is missing"
            if actual != wanted:
                return f"Expected {path} to be {json.dumps(wanted)}, got {json.dumps(actual)}"
    text = expect.get("contains")
    if text and text not in response.text:
        return f"Expected the body to contain {json.dumps(text)}"
    max_ms = expect.get("max_ms")
    if max_ms is not None and elapsed_ms > max_ms:
        return f"Expected a response within {max_ms:g}ms, took {elapsed_ms:.0f}ms"
    return None
