"""CTRF JSON export (https://ctrf.io): results.tool, summary and tests with retries and flaky.

The tests are the leaf results; a pipeline case whose tests are sub-results is not a test itself:
its name heads the `suite` path of its tests, so they stay under it.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterable
from typing import IO, Any

from testledger.export.rows import ExportRow
from testledger.schemas import ExecutionOut

#: The version in the CTRF schema's published examples and in what CTRF reporters write today (the
#: draft specification text still carries 0.0.0 as a placeholder).
SPEC_VERSION = "1.0.0"
_STATUS = {"passed": "passed", "failed": "failed", "error": "failed", "skipped": "skipped"}


def write_ctrf(execution: ExecutionOut, rows: Iterable[ExportRow], out: IO[bytes]) -> None:
    """Streamed: the summary comes from the run's counters, tests are written as they are read."""
    t = execution.totals
    start = int(execution.started_at.timestamp() * 1000) if execution.started_at else 0
    stop = int(execution.completed_at.timestamp() * 1000) if execution.completed_at else start
    summary = {
        "tests": t.tests, "passed": t.passed, "failed": t.failed + t.errors, "skipped": t.skipped,
        "pending": 0, "other": 0, "flaky": t.flaky, "start": start, "stop": stop,
    }
    head = {"reportFormat": "CTRF", "specVersion": SPEC_VERSION, "results": {"tool": {"name": "testledger"}}}
    environment = {"testEnvironment": execution.environment, "buildUrl": execution.build_url,
                   "commit": execution.revision, "branchName": execution.branch,
                   "reportName": execution.execution_id}
    out.write(json.dumps(head)[:-2].encode())  # reopen results to stream tests into it
    out.write(b', "summary": ' + json.dumps(summary).encode())
    out.write(b', "environment": ' + json.dumps({k: v for k, v in environment.items() if v}).encode())
    out.write(b', "tests": [')
    groups: dict[int, str] = {}
    written = 0
    for row in rows:
        if row.group:
            groups[row.idx] = row.name
            continue
        parent = groups.get(row.parent_idx) if row.parent_idx is not None else None
        out.write((b",\n" if written else b"\n") + json.dumps(_test(row, parent), ensure_ascii=False).encode())
        written += 1
    out.write(b"\n]}}\n")


def _ms(value: float | None) -> int:
    return round(value or 0)


def _test(row: ExportRow, parent: str | None) -> dict[str, Any]:
    test: dict[str, Any] = {"name": row.name, "status": _STATUS[row.status], "duration": _ms(row.duration_ms)}
    suite = [part for part in (parent, row.suite) if part]
    if suite:
        test["suite"] = suite
    if row.classname:
        test["filePath"] = row.classname
    if row.message:
        test["message"] = row.message
    if row.stack_trace:
        test["trace"] = row.stack_trace
    if row.status == "error":
        test["rawStatus"] = "error"
    if row.error_type:
        test["extra"] = {"errorType": row.error_type}
    if row.stdout:
        test["stdout"] = row.stdout.splitlines()
    if row.stderr:
        test["stderr"] = row.stderr.splitlines()
    if row.attachments:
        test["attachments"] = [_attachment(path) for path in row.attachments]
    if row.attempts and len(row.attempts) > 1:
        test["retries"] = len(row.attempts) - 1
        test["flaky"] = row.flaky
        test["retryAttempts"] = [
            {"attempt": i + 1, "status": _STATUS.get(a.get("status", "failed"), "other"),
             "duration": _ms(a.get("duration_ms")), **({"message": a["message"]} if a.get("message") else {})}
            for i, a in enumerate(row.attempts[:-1])
        ]
    elif row.flaky:
        test["flaky"] = True
    if row.properties:
        test.setdefault("extra", {})["properties"] = row.properties
    return test


def _attachment(path: str) -> dict[str, str]:
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return {"name": path.rsplit("/", 1)[-1], "contentType": content_type, "path": path}
