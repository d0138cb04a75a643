"""The run list's driver-level page (`db.run_pages`) against the Core path, on SQLite and PostgreSQL.

`list_executions` (`runs list`, `GET /api/v1/executions`, MCP) reads its page on the sqlite3 or
psycopg cursor with conversions of its own; `get_execution` still reads a run through SQLAlchemy's
column types. Every run of every page must equal what that path gives, value and type, and every
filter and cursor page must hold exactly the runs a plain Python filter over them selects.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from testledger import lifecycle
from testledger.db import records
from testledger.db.engine import Store
from testledger.db.run_pages import STATUS_FILTERS
from testledger.db.tables import Run
from testledger.errors import Invalid
from testledger.execute.masking import MASK
from testledger.schemas import ExecutionOut
from testledger.services import runs

ENVS = ["dev", "staging", "prod", "local", "ci"]
#: Stored as the executor stores them: the secret already masked; nested values and non-ASCII kept.
PARAMETERS = {"token": MASK, "retries": 3, "matrix": {"python": ["3.11", "3.12"]}, "note": "ünïcode", "off": None}

Check = Callable[[ExecutionOut], bool]


def _create(store: Store, **kw: object) -> str:
    kw = {"workspace": "WKS", "actor": "alice", "environment": "ci", **kw}
    with store.write() as db:
        return records.create_run(db, allowed_environments=ENVS, **kw).key  # type: ignore[arg-type]


def _move(store: Store, key: str, to: str, **kw: object) -> None:
    with store.write() as db:
        records.transition(db, workspace="WKS", key=key, to=to, **kw)  # type: ignore[arg-type]


@pytest.fixture
def made(store: Store) -> list[str]:
    """Runs in every status, with and without pipeline, labels, parameters, times and error; some
    created at the same instant (the keyset then orders by id), one on a whole second."""
    keys = [
        _create(store, pipeline_key="api", branch="main", revision="abc123", parameters=PARAMETERS,
                labels={"team": "web", "k8s.io/zone": "eu"}, build_url="https://ci.example/1"),
        _create(store, pipeline_key="web", environment="staging", trigger="gatekeeper",
                labels={"team": "api", "tier": "1"}),
        _create(store, environment="production", trigger="api", branch="main"),  # no pipeline; prod by alias
        _create(store, pipeline_key="api", branch="feature/x", revision="def456"),
    ]
    keys += [_create(store, pipeline_key="web", labels={"team": "web"}) for _ in range(6)]
    keys.append(_create(store, workspace="OTHER", pipeline_key="api"))  # never listed in WKS
    for key in keys[1:10]:
        _move(store, key, "running")
    _move(store, keys[1], "completed", result="passed", force=True)
    _move(store, keys[2], "cancelled")
    _move(store, keys[3], "completed", result="error", error="executor lost: the worker died", force=True)
    _move(store, keys[4], "completed", result="skipped")
    _move(store, keys[5], "completed", result="failed")
    _move(store, keys[6], "timeout")
    _move(store, keys[7], "cancelled")
    # keys[0] stays pending, keys[8] and keys[9] running.
    base = datetime(2026, 11, 30, 12, 0, 0, 250_000, tzinfo=UTC)
    created = [base + timedelta(minutes=i) for i in range(10)]
    created[5] = created[6] = created[7] = base + timedelta(minutes=5)  # a tie: the keyset orders by id
    created[8] = datetime(2026, 11, 30, 13, 0, 0, tzinfo=UTC)  # a whole second: no microseconds stored
    with store.write() as db:
        for key, at in zip(keys, created, strict=False):
            db.execute(update(Run).where(Run.key == key).values(created_at=at))
    return keys[:10]


def _expected(store: Store, keys: list[str]) -> list[ExecutionOut]:
    """The runs as the Core path reads them (`get_execution`: SQLAlchemy's column types), newest first."""
    with store.read() as db:
        found = [runs.get_execution(db, workspace="WKS", key=key, with_cases=False) for key in keys]
    return sorted(found, key=lambda e: (e.created_at, e.id.hex), reverse=True)


def _same(page: list[ExecutionOut], expected: list[ExecutionOut]) -> None:
    """Equal values of equal types: `repr` shows UUID against str, the datetime's tzinfo, dict against text."""
    assert [repr(e) for e in page] == [repr(e) for e in expected]
    assert [e.model_dump_json() for e in page] == [e.model_dump_json() for e in expected]


def _walk(store: Store, limit: int, **filters: object) -> list[ExecutionOut]:
    """Every page of a filtered listing from the first, on a bare connection (as the API reads)."""
    items: list[ExecutionOut] = []
    cursor = None
    with store.read_connection() as conn:
        while True:
            page = runs.list_executions(conn, workspace="WKS", limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
            assert len(page.items) <= limit
            items += page.items
            cursor = page.next_cursor
            if cursor is None:
                return items


def test_every_column_reads_as_the_core_path_gives_it(store: Store, made: list[str]) -> None:
    expected = _expected(store, made)
    assert {e.status for e in expected} == {"PENDING", "RUNNING", "COMPLETED", "CANCELLED", "TIMEOUT"}
    with store.read_connection() as conn:
        page = runs.list_executions(conn, workspace="WKS", limit=500)
    _same(page.items, expected)
    with store.read() as db:  # on an ORM session (MCP, `runs list`) the same
        _same(runs.list_executions(db, workspace="WKS", limit=500).items, expected)
    first = next(e for e in page.items if e.execution_id == made[0])
    assert (first.parameters, first.labels, first.pipeline_key, first.created_at.tzinfo) == (
        PARAMETERS, {"team": "web", "k8s.io/zone": "eu"}, "api", UTC)
    nothing = next(e for e in page.items if e.execution_id == made[2])
    assert (nothing.pipeline_key, nothing.pipeline_version, nothing.labels, nothing.parameters) == (
        None, None, None, None)
    assert next(e for e in page.items if e.execution_id == made[8]).created_at == datetime(
        2026, 11, 30, 13, tzinfo=UTC)
    for built in page.items:  # built without validation: exactly what validating the same values gives
        assert built.model_dump_json() == ExecutionOut.model_validate(built.model_dump()).model_dump_json()


def _status(name: str) -> Check:
    done = lifecycle.COMPLETED.upper()
    return {
        "pending": lambda e: e.status == "PENDING",
        "running": lambda e: e.status in ("PENDING", "RUNNING"),
        "completed": lambda e: e.status == done,
        "cancelled": lambda e: e.status == "CANCELLED",
        "timeout": lambda e: e.status == "TIMEOUT",
        "passed": lambda e: e.status == done and e.result == "PASSED",
        "failed": lambda e: e.status == done and e.result == "FAILED",
        "skipped": lambda e: e.status == done and e.result == "SKIPPED",
        "error": lambda e: (e.status == done and e.result == "ERROR") or e.status == "TIMEOUT",
    }[name]


SINCE = datetime(2026, 11, 30, 12, 3, tzinfo=UTC)
UNTIL = datetime(2026, 11, 30, 12, 7, tzinfo=UTC)
FILTERS: list[tuple[dict[str, object], Check]] = [
    ({}, lambda e: True),
    *[(dict[str, object](status=s), _status(s)) for s in STATUS_FILTERS],
    ({"status": "FAILED"}, _status("failed")),  # any case, as the CLI and the API pass it
    ({"result": "failed"}, lambda e: e.result == "FAILED"),
    ({"pipeline_key": "api"}, lambda e: e.pipeline_key == "api"),
    ({"pipeline_key": "nope"}, lambda e: False),
    ({"environment": "prod"}, lambda e: e.environment == "prod"),
    ({"environment": "production"}, lambda e: e.environment == "prod"),
    ({"branch": "main"}, lambda e: e.branch == "main"),
    ({"revision": "def456"}, lambda e: e.revision == "def456"),
    ({"trigger": "GATEKEEPER"}, lambda e: e.trigger == "gatekeeper"),
    ({"labels": {"team": "web"}}, lambda e: (e.labels or {}).get("team") == "web"),
    ({"labels": {"team": "api", "tier": "1"}},
     lambda e: {"team": "api", "tier": "1"}.items() <= (e.labels or {}).items()),
    ({"labels": {"k8s.io/zone": "eu"}}, lambda e: (e.labels or {}).get("k8s.io/zone") == "eu"),
    ({"status": "error", "pipeline_key": "api"}, lambda e: _status("error")(e) and e.pipeline_key == "api"),
    ({"date_from": SINCE}, lambda e: e.created_at >= SINCE),
    ({"date_to": UNTIL}, lambda e: e.created_at < UNTIL),
    # Another zone: the same instants.
    ({"date_from": SINCE.astimezone(timezone(timedelta(hours=-5))), "date_to": UNTIL.astimezone(
        timezone(timedelta(hours=9)))}, lambda e: SINCE <= e.created_at < UNTIL),
    ({"pipeline_key": "web", "status": "running", "labels": {"team": "web"}, "date_from": SINCE},
     lambda e: e.pipeline_key == "web" and e.status in ("PENDING", "RUNNING") and e.created_at >= SINCE),
]


@pytest.mark.parametrize("limit", [1, 2, 3, 50])
def test_filters_and_cursor_pages_select_what_the_filter_says(store: Store, made: list[str], limit: int) -> None:
    expected = _expected(store, made)
    for filters, check in FILTERS:
        wanted = [e for e in expected if check(e)]
        assert wanted or filters.get("pipeline_key") == "nope", filters  # each filter keeps some runs
        _same(_walk(store, limit, **filters), wanted)


def test_a_page_ending_inside_a_tie_continues_after_it(store: Store, made: list[str]) -> None:
    """Three runs share a `created_at`: a page may end between them and the next goes on by id."""
    expected = _expected(store, made)
    tied = [i for i, e in enumerate(expected) if e.created_at == datetime(2026, 11, 30, 12, 5, 0, 250_000, tzinfo=UTC)]
    assert len(tied) == 3
    with store.read_connection() as conn:
        first = runs.list_executions(conn, workspace="WKS", limit=tied[0] + 2)
        rest = runs.list_executions(conn, workspace="WKS", limit=500, cursor=first.next_cursor)
    _same(first.items + rest.items, expected)


def test_a_time_without_a_zone_is_utc_and_a_cursor_without_one_is_refused(store: Store, made: list[str]) -> None:
    import base64
    import uuid

    with store.read_connection() as conn:
        naive = runs.list_executions(conn, workspace="WKS", date_from=datetime(2026, 11, 30, 12, 3),
                                     date_to=datetime(2026, 11, 30, 12, 7))
        aware = runs.list_executions(conn, workspace="WKS", date_from=SINCE, date_to=UNTIL)
        assert len(aware.items) == 5  # minutes 3, 4 and the three at 5
        _same(naive.items, aware.items)
        forged = base64.urlsafe_b64encode(f"2026-11-30T12:00:00|{uuid.uuid4()}".encode()).decode()
        with pytest.raises(Invalid, match="invalid cursor"):
            runs.list_executions(conn, workspace="WKS", cursor=forged)
