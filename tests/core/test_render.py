"""`runs list` into a pipe is plain text, character for character what Rich draws there."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import pytest
from rich.console import Console

from testledger.cli.render import plain_runs_listing, runs_table
from testledger.schemas import ExecutionOut, TotalsOut


def _execution(key: str, *, pipeline: str | None, status: str, result: str | None, duration: int | None,
               tests: int) -> ExecutionOut:
    return ExecutionOut(
        execution_id=key, id=uuid.uuid4(), workspace="WKS", status=status, result=result, test_run_status="passed",
        created_at=datetime(2026, 12, 2, 9, 5, 7, 123456, tzinfo=UTC), started_at=None, completed_at=None,
        duration_ms=duration, pipeline_key=pipeline, environment="staging", trigger="manual", triggered_by="me",
        totals=TotalsOut(tests=tests, passed=tests, failed=3, errors=0, skipped=0, flaky=0),
    )


def _rich(executions: list[ExecutionOut], more: str | None, width: int) -> str:
    """What `runs list` draws through Rich into a file (cli/runs.py)."""
    from rich.markup import escape

    out = Console(file=io.StringIO(), width=width, highlight=False, soft_wrap=False)
    if not executions:
        out.print("No runs found.")
    else:
        table = runs_table(executions)
        out.width = max(out.width, out.measure(table, options=out.options.update_width(10_000)).maximum)
        out.print(table)
        if more:
            out.print(f"[dim]More: {escape(more)}[/]", soft_wrap=True)
    return out.file.getvalue()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("width", [40, 80, 200])
def test_plain_listing_is_what_rich_draws(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    runs = [
        _execution("WKS-1202-1", pipeline="bench", status="COMPLETED", result="PASSED", duration=100, tests=100),
        _execution("WKS-1202-10000", pipeline=None, status="RUNNING", result=None, duration=None, tests=0),
        _execution("WKS-1202-3", pipeline="a-much-longer-pipeline-key-than-the-rest", status="COMPLETED",
                   result="FAILED", duration=3_723_000, tests=123_456),
    ]
    hint = "testledger runs list -n 1 --cursor MjAyNi0xMi0wMlQ"
    for executions, more in ((runs, None), (runs[:1], hint), ([], None)):
        plain = plain_runs_listing(executions, more)
        assert plain == _rich(executions, more, width)


def test_text_rich_would_draw_differently_goes_through_rich() -> None:
    one = _execution("WKS-1202-1", pipeline="bench", status="COMPLETED", result="PASSED", duration=1, tests=1)
    assert plain_runs_listing([one], "testledger runs list --label x=:smile: --cursor A") is None
    one.pipeline_key = "tësts"
    assert plain_runs_listing([one], None) is None
