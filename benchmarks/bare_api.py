"""The baseline of bench_api.py: a bare Starlette route returning the same 50 newest runs from the same SQLite store."""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SQL = (
    "SELECT r.key, r.id, r.status, r.result, r.created_at, r.started_at, r.completed_at, r.duration_ms, "
    "r.environment, r.trigger, r.triggered_by, r.revision, r.branch, r.build_url, r.labels, r.parameters, "
    "r.error, r.tests, r.passed, r.failed, r.errors, r.skipped, r.flaky, p.key AS pipeline_key, "
    "r.pipeline_version, w.key AS workspace "
    "FROM test_runs AS r JOIN workspaces AS w ON w.id = r.workspace_id "
    "LEFT JOIN pipelines AS p ON p.id = r.test_definition_id "
    "WHERE r.workspace_id = (SELECT id FROM workspaces WHERE key = ?) "
    "ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
)
_local = threading.local()


def _connection() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ["BENCH_DB"], check_same_thread=False)
        conn.row_factory = sqlite3.Row
        _local.conn = conn
    return conn


async def executions(request: Request) -> JSONResponse:
    limit = int(request.query_params.get("limit", "50"))
    rows = _connection().execute(SQL, (os.environ.get("BENCH_WORKSPACE", "BENCH"), limit)).fetchall()
    items: list[dict[str, Any]] = [dict(r) for r in rows]
    return JSONResponse({"items": items, "next_cursor": None})


app = Starlette(routes=[Route("/api/v1/executions", executions)])
