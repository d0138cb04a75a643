"""Results reach PostgreSQL by two paths, a small batch as one jsonb document with the commit and a large
one by binary COPY: both store every field the same, to the microsecond and the last character."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, Table, create_engine, text

from testledger.db import run_sql
from testledger.db.bulk import ResultWriter
from testledger.db.engine import Store
from testledger.db.rows import NewCase, NewResult, sqlite_datetime
from testledger.db.types import UTCDateTime, utcnow

COLUMNS = ("idx", "parent_idx", "case_id", "status", "duration_ms", "message", "error_type", "failure_category",
           "stack_trace", "stdout", "stderr", "properties", "attempt_count", "attempts", "flaky", "worker",
           "started_at", "completed_at", "log_ref", "attachments")


def _result(idx: int) -> NewResult:
    case = NewCase(id=10_000 + idx % 3, identity=f"{idx % 3:040x}", kind="reported", name=f'test "{idx % 3}" é',
                   suite="s\\x", classname="pkg.C")
    return NewResult(
        idx=idx, case=case, status="failed", parent_idx=None if idx % 2 else 0, duration_ms=1234.5678901,
        message='expected "a\\b" got 😀\nnext line', error_type="AssertionError", failure_category="assertion",
        stack_trace="Traceback\n  File \"x.py\", line 1\u2028", stdout="out\ttab", stderr="",
        properties={"k": "v \"q\"", "ü": "1"},
        attempts=[{"status": "failed", "duration_ms": 1.5}, {"status": "failed"}],
        attempt_count=7, flaky=True, worker="gw1", started_at=datetime(2026, 12, 3, 9, 0, 0, 123456, tzinfo=UTC),
        completed_at=datetime(2026, 12, 3, 9, 0, 1, 654321, tzinfo=UTC), log_ref="logs/1.txt",
        attachments=["a.png", "b c.txt"],
    )


def _stored(store: Store, count: int) -> list[tuple[Any, ...]]:
    with store.write() as db:
        run = run_sql.start_reported_run(db, workspace="WKS", actor="ci", environment="ci",
                                         allowed_environments=("ci",), pipeline_key="unit", trigger="api",
                                         executor="ingest")
        writer = ResultWriter(db, run_id=run.id, workspace_id=run.workspace_id, now=utcnow(), batch=5000)
        for idx in range(count):
            writer.add(_result(idx))
        writer.flush()
        run_id: uuid.UUID = run.id
    with store.read() as db:
        rows = db.execute(text(f"SELECT {', '.join(COLUMNS)} FROM case_results WHERE run_id = :r AND idx < 4 "
                               "ORDER BY idx"), {"r": run_id}).all()
    return [tuple(row) for row in rows]


def test_a_small_batch_and_a_large_one_store_the_same_fields(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        small, large = _stored(store, 10), _stored(store, 1500)  # 1,500: above the jsonb path's 1,000
    finally:
        store.dispose()
    assert small == large
    first = dict(zip(COLUMNS, small[1], strict=True))
    assert first["started_at"] == datetime(2026, 12, 3, 9, 0, 0, 123456, tzinfo=UTC)
    assert (first["message"], first["properties"], first["attachments"], first["duration_ms"]) == (
        'expected "a\\b" got 😀\nnext line', {"k": 'v "q"', "ü": "1"}, ["a.png", "b c.txt"], 1234.5678901)


@pytest.mark.parametrize("duration", [float("nan"), float("inf")])
def test_a_duration_json_cannot_carry_goes_by_copy(pg_url: str, duration: float) -> None:
    """JSON has no NaN or infinity: such a batch is copied, not refused (the parsers never give one; other
    writers might)."""
    store = Store(pg_url)
    try:
        with store.write() as db:
            run = run_sql.start_reported_run(db, workspace="WKS", actor="ci", environment="ci",
                                             allowed_environments=("ci",), pipeline_key="unit", trigger="api",
                                             executor="ingest")
            writer = ResultWriter(db, run_id=run.id, workspace_id=run.workspace_id, now=utcnow())
            result = _result(0)
            result.duration_ms = duration
            writer.add(result)
            writer.flush()
        with store.read() as db:
            stored = db.scalar(text("SELECT duration_ms FROM case_results WHERE run_id = :r"), {"r": run.id})
    finally:
        store.dispose()
    assert str(stored) == str(duration)


@pytest.mark.parametrize("value", [
    datetime(2026, 12, 3, 18, 22, 3, 848561, tzinfo=UTC),
    datetime(2026, 12, 3, 18, 22, 3, tzinfo=UTC),  # no microseconds: still written with six digits
    datetime(2026, 12, 3, 19, 22, 3, 5, tzinfo=timezone(timedelta(hours=1))),  # another zone: as UTC
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
], ids=["micro", "whole-second", "other-zone", "early-year"])
def test_the_driver_paths_write_a_time_as_sqlalchemy_does(value: datetime) -> None:
    """Times the driver-level writers store on SQLite are the text SQLAlchemy stores, so reads,
    comparisons and ordering agree whichever path wrote the row."""
    engine = create_engine("sqlite://")
    table = Table("t", MetaData(), Column("at", UTCDateTime))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert().values(at=value))
        stored = conn.execute(text("SELECT at FROM t")).scalar_one()
    assert sqlite_datetime(value) == stored
