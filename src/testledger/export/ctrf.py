"""CTRF JSON export (https://ctrf.io): results.tool, summary and tests with retries and flaky."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

from testledger.export.rows import ExportRow
from testledger.schemas import ExecutionOut

_STATUS = {"passed": "passed", "failed": "failed", "error": "failed", "skipped": "skipped"}


def write_ctrf(execution: ExecutionOut, rows: Iterable[ExportRow], out: IO[bytes]) -> None:
    """Streamed: the summary comes from the run's counters, tests are written as they are read."""
    t = execution.totals
    start = int(execution.started_at.timestamp() * 1000) if execution.started_at else 0
    stop = int(execution.completed_at.timestamp() * 1000) if execution.completed_at else start
    summary = {
        "tests": t.tests, "passed": t.passed, "failed": t.failed + t.errors, "skipped": t.skipped,
        "pending": 0, "other": 0, "start": start, "stop": stop,
    }
    head = {"reportFormat": "CTRF", "specVersion": "0.0.0", "results": {"tool": {"name": "testledger"}}}
    environment = {"testEnvironment": execution.environment, "buildUrl": execution.build_url,
                   "commit": execution.revision, "branchName": execution.branch,
                   "reportName": execution.execution_id}
    out.write(json.dumps(head)[:-2].encode())  # reopen results to stream tests into it
    out.write(b', "summary": ' + json.dumps(summary).encode())
    out.write(b', "environment": ' + json.dumps({k: v for k, v in environment.items() if v}).encode())
    out.write(b', "tests": [')
    for n, row in enumerate(rows):
        out.write((b",\n" if n else b"\n") + json.dumps(_test(row), ensure_ascii=False).encode())
    out.write(b"\n]}}\n")


def _test(row: ExportRow) -> dict[str, Any]:
    test: dict[str, Any] = {
        "name": row.name, "status": _STATUS[row.status], "duration": row.duration_ms or 0,
    }
    if row.suite:
        test["suite"] = row.suite
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
        test["attachments"] = [{"name": p.rsplit("/", 1)[-1], "path": p} for p in row.attachments]
    if row.attempts and len(row.attempts) > 1:
        test["retries"] = len(row.attempts) - 1
        test["flaky"] = row.flaky
        test["retryAttempts"] = [
            {"attempt": i + 1, "status": _STATUS.get(a.get("status", "failed"), "other"),
             "duration": a.get("duration_ms") or 0, **({"message": a["message"]} if a.get("message") else {})}
            for i, a in enumerate(row.attempts[:-1])
        ]
    elif row.flaky:
        test["flaky"] = True
    if row.properties:
        test.setdefault("extra", {})["properties"] = row.properties
    return test
