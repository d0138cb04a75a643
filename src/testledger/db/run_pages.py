"""A page of the run list (`runs list`, `GET /api/v1/executions`, MCP `list_executions`), read on the driver.

One statement per page, run on the sqlite3 or psycopg connection under the store's connection, its
values converted here for exactly these columns as their SQLAlchemy types convert them: UUIDs,
UTC-aware datetimes, decoded JSON. Through SQLAlchemy the same page cost ~0.5 ms more CPU than the
query itself (cache key, bind and result processing of 50 rows; issue 11). `services.runs` stays
the contract: it checks the filters, then builds its schemas from these rows.
`tests/core/test_run_pages.py` compares every column with the Core path's values on both stores.

`runs_since` reads the runs of a window the same way for pipeline health (~8,000 runs a week at 10M).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection

from testledger import lifecycle
from testledger.db.driver_sql import send_pending
from testledger.db.rows import sqlite_datetime

# The columns `services.runs._execution` unpacks, in its order (the same as `_RUN_QUERY`'s).
_SELECT = (
    'SELECT r."key", r.id, w."key", r.status, r.result, r.created_at, r.started_at, r.completed_at, '
    'r.duration_ms, p."key", r.pipeline_version, r.rerun_of, r.environment, r."trigger", r.triggered_by, '
    "r.revision, r.branch, r.build_url, r.labels, r.parameters, r.error, r.tests, r.passed, r.failed, r.errors, "
    "r.skipped, r.flaky "
    "FROM test_runs r JOIN workspaces w ON w.id = r.workspace_id "
    "LEFT OUTER JOIN pipelines p ON p.id = r.test_definition_id "
    # The workspace (and pipeline) looked up first: the planner then walks one index in keyset order;
    # filtering on the joined keys made SQLite scan the workspace's runs instead.
    'WHERE r.workspace_id = (SELECT id FROM workspaces WHERE "key" = ?)'
)
_PIPELINE = (
    'r.test_definition_id = (SELECT id FROM pipelines WHERE "key" = ? '
    'AND workspace_id = (SELECT id FROM workspaces WHERE "key" = ?))'
)
_ORDER = " ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
_ID, _CREATED, _STARTED, _COMPLETED, _LABELS, _PARAMETERS = 1, 5, 6, 7, 18, 19

#: The columns a page may be filtered on by equality (`trigger` is a word some SQL reserves).
_EQUAL = {"result": "result", "environment": "environment", "branch": "branch", "revision": "revision",
          "trigger": '"trigger"'}

#: A status filter in any of the three vocabularies (lifecycle, result, the test_runs view), as SQL.
STATUS_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    lifecycle.PENDING: ("r.status = ?", (lifecycle.PENDING,)),
    lifecycle.RUNNING: ("r.status IN (?, ?)", (lifecycle.PENDING, lifecycle.RUNNING)),
    lifecycle.COMPLETED: ("r.status = ?", (lifecycle.COMPLETED,)),
    lifecycle.CANCELLED: ("r.status = ?", (lifecycle.CANCELLED,)),
    lifecycle.TIMEOUT: ("r.status = ?", (lifecycle.TIMEOUT,)),
    lifecycle.PASSED: ("r.status = ? AND r.result = ?", (lifecycle.COMPLETED, lifecycle.PASSED)),
    lifecycle.FAILED: ("r.status = ? AND r.result = ?", (lifecycle.COMPLETED, lifecycle.FAILED)),
    lifecycle.SKIPPED: ("r.status = ? AND r.result = ?", (lifecycle.COMPLETED, lifecycle.SKIPPED)),
    lifecycle.ERROR: (
        "(r.status = ? AND r.result = ? OR r.status = ?)", (lifecycle.COMPLETED, lifecycle.ERROR, lifecycle.TIMEOUT)
    ),
}


def newest_runs(
    conn: Connection,
    *,
    workspace: str,
    pipeline_key: str | None,
    status: str | None,
    equal: Mapping[str, str | None],
    labels: Iterable[tuple[str, str]],
    created: tuple[datetime | None, datetime | None],
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[list[Any]]:
    """The workspace's runs newest first (`created_at`, then `id`, descending), at most `limit`: of
    the pipeline, with the status (a key of `STATUS_FILTERS`), the columns `equal` names (values as
    stored: lower case), the labels, created in [from, to) of `created`, and older than the keyset
    position `before`, each when given. Datetimes must be timezone-aware.

    A row holds the page's columns in `services.runs._RUN_QUERY` order, typed as SQLAlchemy's
    column types give them."""
    sqlite = conn.dialect.name == "sqlite"

    def time(value: datetime) -> Any:
        if value.tzinfo is None:  # as `UTCDateTime` refuses it: the store could only guess its zone
            raise ValueError("naive datetime given where a UTC datetime is required")
        return sqlite_datetime(value) if sqlite else value

    sql: list[str] = [_SELECT]
    params: list[Any] = [workspace]
    if pipeline_key:
        sql.append(_PIPELINE)
        params += (pipeline_key, workspace)
    if status:
        clause, values = STATUS_FILTERS[status]
        sql.append(clause)  # each a term of its own (the one with OR is in parentheses)
        params += values
    for column, value in equal.items():
        if value:
            sql.append(f"r.{_EQUAL[column]} = ?")
            params.append(value)
    for name, value in labels:
        # What SQLAlchemy renders for `labels[name].as_string() == value` (its SQLite path is `$."name"`).
        if sqlite:
            sql.append("CAST(json_extract(r.labels, ?) AS VARCHAR) = ?")
            params += (f'$."{name}"', value)
        else:
            sql.append("(r.labels ->> ?::text) = ?")
            params += (name, value)
    created_from, created_to = created
    if created_from:
        sql.append("r.created_at >= ?")
        params.append(time(created_from))
    if created_to:
        sql.append("r.created_at < ?")
        params.append(time(created_to))
    if before:
        sql.append("(r.created_at, r.id) < (?, ?)")
        params += (time(before[0]), before[1].hex if sqlite else before[1])
    params.append(limit)
    statement = " AND ".join(sql) + _ORDER
    send_pending(conn)  # statements queued on this connection come first
    driver = conn.connection.driver_connection
    if sqlite:
        return [_sqlite_row(row) for row in driver.execute(statement, params).fetchall()]  # type: ignore[union-attr]
    rows = driver.execute(statement.replace("?", "%s"), params).fetchall()  # type: ignore[union-attr]
    return [_postgresql_row(row) for row in rows]


def _uuid(hex_digits: str, *, new: Any = object.__new__, set_: Any = object.__setattr__,
          unknown: uuid.SafeUUID = uuid.SafeUUID.unknown) -> uuid.UUID:
    """`uuid.UUID(hex=...)` for the 32 lower-case hex digits SQLite stores, as its `__init__` sets the
    same two slots, minus its parsing of the other spellings (half its cost)."""
    value = new(uuid.UUID)
    set_(value, "int", int(hex_digits, 16))
    set_(value, "is_safe", unknown)
    return value  # type: ignore[no-any-return]


def _sqlite_row(row: tuple[Any, ...], *, time_of: Any = datetime.fromisoformat, loads: Any = json.loads) -> list[Any]:
    """A row as SQLite stores it: ids as 32 hex digits, times as naive UTC text, JSON as text."""
    values = list(row)
    values[_ID] = _uuid(values[_ID])
    # The offset parsed with the text costs a fifth of `.replace(tzinfo=UTC)` and gives the same value.
    values[_CREATED] = time_of(values[_CREATED] + "+00:00")
    for at in (_STARTED, _COMPLETED):
        if values[at] is not None:
            values[at] = time_of(values[at] + "+00:00")
    for at in (_LABELS, _PARAMETERS):
        if values[at] is not None:
            values[at] = loads(values[at])
    return values


def _postgresql_row(row: tuple[Any, ...]) -> list[Any]:
    """A row as psycopg gives it (UUIDs and JSON decoded), its times moved to UTC."""
    values = list(row)
    for at in (_CREATED, _STARTED, _COMPLETED):
        value = values[at]
        if value is not None and value.tzinfo is not UTC:
            values[at] = value.astimezone(UTC)
    return values



_WINDOW = (
    'SELECT r.id, r."key", r.test_definition_id, r.environment, r.branch, r.status, r.result, r.created_at, '
    "{day}, r.duration_ms FROM test_runs r WHERE r.workspace_id = ? AND r.created_at >= ?"
)
_DAY = {"sqlite": "date(r.created_at)", "postgresql": "(r.created_at AT TIME ZONE 'UTC')::date"}


class WindowRuns(NamedTuple):
    """`runs_since`'s answer: the rows, and the keys of the pipelines their pipeline ids name."""

    rows: list[tuple[Any, ...]]
    pipeline_keys: dict[Any, str]


def runs_since(
    conn: Connection, *, workspace_id: int, since: datetime, pipeline_id: uuid.UUID | None = None,
    environment: str | None = None, branch: str | None = None,
) -> WindowRuns:
    """Every run of the workspace created since `since` (of the pipeline, environment and branch, each when
    given), oldest first, for pipeline health: rows of (id, key, pipeline id, environment, branch, status,
    result, created_at, UTC day, duration_ms), their values as the driver gives them: `utc_time` and
    `utc_day` make datetimes and dates of the two time columns (only a few are needed as such), ids are
    32 hex digits on SQLite and UUIDs on PostgreSQL. Through SQLAlchemy's result processing (and with
    the pipeline key joined in) the ~8,000 runs of a busy week cost half the answer."""
    sqlite = conn.dialect.name == "sqlite"
    if since.tzinfo is None:
        raise ValueError("naive datetime given where a UTC datetime is required")
    sql = [_WINDOW.format(day=_DAY["sqlite" if sqlite else "postgresql"])]
    params: list[Any] = [workspace_id, sqlite_datetime(since) if sqlite else since]
    for clause, value in (("r.test_definition_id = ?", pipeline_id), ("r.environment = ?", environment),
                          ("r.branch = ?", branch)):
        if value is not None:
            sql.append(clause)
            params.append(value.hex if sqlite and isinstance(value, uuid.UUID) else value)
    statement = " AND ".join(sql) + " ORDER BY r.created_at, r.id"
    pipelines = 'SELECT id, "key" FROM pipelines WHERE workspace_id = ?'
    send_pending(conn)  # statements queued on this connection come first
    driver: Any = conn.connection.driver_connection
    if not sqlite:
        statement, pipelines = statement.replace("?", "%s"), pipelines.replace("?", "%s")
    return WindowRuns(driver.execute(statement, params).fetchall(),
                      dict(driver.execute(pipelines, (workspace_id,)).fetchall()))


def utc_time(value: str | datetime) -> datetime:
    """A time column as a driver gives it (naive UTC text from SQLite), as an aware UTC datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def utc_day(value: str | date) -> date:
    """A date column as a driver gives it (ISO text from SQLite), as a date."""
    return date.fromisoformat(value) if isinstance(value, str) else value
