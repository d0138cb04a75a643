"""`runs list` and the execution tree (`runs show`, `run`, `runs finish`) into a pipe are plain text, character
for character what Rich draws there (the tree unwrapped)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import pytest
from rich.console import Console

from testledger.cli.render import TREE_LIMIT, execution_outline, plain_runs_listing, runs_table
from testledger.schemas import CaseOut, ExecutionOut, TotalsOut


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


def _tree_execution(cases: list[CaseOut], **extra: object) -> ExecutionOut:
    execution = _execution("WKS-1203-7", pipeline="checkout", status="COMPLETED", result="FAILED", duration=65_400,
                           tests=len(cases))
    return execution.model_copy(update={"cases": cases, **extra})


def _rich_tree(execution: ExecutionOut, *, show_all: bool = False) -> str:
    """What Rich draws of the same outline (as on a terminal, without the styles), on a console too wide to wrap."""
    out = Console(file=io.StringIO(), width=10_000, highlight=False, soft_wrap=False)
    out.print(execution_outline(execution, show_all=show_all).rich())
    return out.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_the_execution_tree_into_a_pipe_is_what_rich_draws_unwrapped() -> None:
    long_name = "test_" + "checkout_with_a_name_longer_than_a_line_" * 3
    cases = [
        CaseOut(index=0, case_key="k0", name="pytest tests/", status="FAILED", duration_ms=61_000, attempts=2,
                flaky=True),
        CaseOut(index=1, case_key="k1", name=long_name, status="FAILED", duration_ms=12,
                error="AssertionError: expected [200] got 500", failure_category="assertion", parent_index=0),
        CaseOut(index=2, case_key="k2", name="test_ok", status="PASSED", duration_ms=3, parent_index=0),
        CaseOut(index=3, case_key="k3", name="lint", status="SKIPPED", error="needs a GPU runner"),
        CaseOut(index=4, case_key="k4", name="smoke", status="ERROR", duration_ms=1_500, error="Timeout",
                failure_category="timeout"),
    ]
    execution = _tree_execution(cases, branch="main", revision="abc123", rerun_of="WKS-1203-6", error="1 case failed",
                                labels={"team": "shop", "result_override": "PASSED by ops"})
    text = execution_outline(execution).text()
    assert text == _rich_tree(execution)
    assert f"\n    │   ├── 1: {long_name} - FAILED (12ms)\n" in text  # one line, however long
    assert "│   │   └── assertion: AssertionError: expected [200] got 500\n" in text  # brackets kept, not markup


def test_a_large_run_lists_what_did_not_pass_and_counts_the_rest() -> None:
    cases = [CaseOut(index=i, case_key=f"k{i}", name=f"t{i}", status="FAILED" if i == 7 else "PASSED")
             for i in range(TREE_LIMIT + 1)]
    execution = _tree_execution(cases)
    text = execution_outline(execution).text()
    assert text == _rich_tree(execution)
    assert text.endswith("    ├── Case 7: t7 - FAILED (-)\n    └── … and 200 passed cases (--all lists them)\n")
    assert execution_outline(execution, show_all=True).text().count("Case ") == TREE_LIMIT + 1


def test_control_characters_in_the_tree_are_shown_escaped() -> None:
    case = CaseOut(index=0, case_key="k", name="evil\x1b[2J", status="FAILED", error="\u202egnp.exe")
    text = execution_outline(_tree_execution([case])).text()
    assert "evil\\x1b[2J - FAILED" in text and "\\u202egnp.exe" in text and "\x1b" not in text
