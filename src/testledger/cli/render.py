"""Rendering runs for people: the seed's execution tree, run tables, durations like `5m 32s`.

Everything here that came from a report or a caller passes through :func:`printable` (and Rich's
markup escape where markup is used): a test name must never drive the terminal.

Rich is imported by the functions that draw with it (~30 ms of a command's start, issue 9): a run
list going to a pipe or a file is plain text that needs none of it (:func:`plain_runs_listing`).
"""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.table import Table
    from rich.tree import Tree

    from testledger.schemas import CaseDetailOut, CaseOut, ExecutionOut

STATUS_STYLE = {
    "PASSED": "green", "FAILED": "red", "ERROR": "bold red", "SKIPPED": "yellow",
    "passed": "green", "failed": "red", "error": "bold red", "cancelled": "yellow", "running": "cyan",
    "COMPLETED": "bold", "RUNNING": "cyan", "PENDING": "dim", "CANCELLED": "yellow", "TIMEOUT": "bold red",
}
#: Above this many cases `runs show` lists the ones that did not pass and counts the rest.
TREE_LIMIT = 200


def count_of(number: int, noun: str, plural: str | None = None) -> str:
    """A count whose noun agrees with it: `1 case`, `2 cases`, `0 files`."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


#: C0 controls but newline and tab, DEL, C1 controls (8-bit CSI/OSC), and the bidirectional
#: overrides/isolates that make text read differently from how it is stored ("Trojan source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str | None) -> str:
    """Text from a report or a caller made safe for a terminal: control characters are shown
    escaped (``\\x1b[2J``, ``\\u202e``) instead of being obeyed; newlines and tabs stay.

    Every human printer uses this; ``--json`` output keeps the text and lets JSON escape it.
    """
    if not text:
        return text or ""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def markup_text(text: str | None) -> str:
    """:func:`printable`, then escaped for Rich markup: for text placed inside a markup string."""
    from rich.markup import escape

    return escape(printable(text))


def format_duration(ms: float | None) -> str:
    """`850ms`, `12s`, `5m 32s`, `1h 2m 3s`; `-` when unknown."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = int(ms // 1000)
    if seconds < 60:
        return f"{ms / 1000:.1f}s" if ms < 10_000 else f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m {seconds}s"


def styled(value: str | None) -> str:
    if value is None:
        return "-"
    style = STATUS_STYLE.get(value)
    return f"[{style}]{markup_text(value)}[/]" if style else markup_text(value)


def execution_tree(execution: ExecutionOut, *, show_all: bool = False) -> Tree:
    """The execution as the seed draws it: status, result, duration, pipeline, environment, cases."""
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(f"[bold]Execution: {markup_text(execution.execution_id)}[/]")
    tree.add(f"Status: {styled(execution.status)}")
    tree.add(f"Result: {styled(execution.result)}")
    tree.add(f"Duration: {format_duration(execution.duration_ms)}")
    tree.add(f"Pipeline: {markup_text(execution.pipeline_key or '-')}")
    if execution.rerun_of:
        tree.add(f"Rerun of: {markup_text(execution.rerun_of)}")
    tree.add(f"Environment: {markup_text(execution.environment)}")
    for title, value in (("Branch", execution.branch), ("Revision", execution.revision)):
        if value:
            tree.add(f"{title}: {markup_text(value)}")
    tree.add(f"Trigger: {markup_text(execution.trigger)} by {markup_text(execution.triggered_by)}")
    labels = {k: v for k, v in (execution.labels or {}).items() if k != "result_override"}
    if labels:
        tree.add("Labels: " + ", ".join(f"{markup_text(k)}={markup_text(v)}" for k, v in sorted(labels.items())))
    if execution.error:
        tree.add(f"Error: [red]{markup_text(execution.error)}[/]")
    override = (execution.labels or {}).get("result_override")
    if override:
        tree.add(f"Result override: [yellow]{markup_text(override)}[/]")
    t = execution.totals
    tree.add(
        f"Totals: {count_of(t.tests, 'test')}, [green]{t.passed} passed[/], [red]{t.failed} failed[/], "
        f"[bold red]{count_of(t.errors, 'error')}[/], [yellow]{t.skipped} skipped[/]"
        + (f", {t.flaky} flaky" if t.flaky else "")
    )
    cases = execution.cases or []
    branch = tree.add("Cases:")
    shown = cases if show_all or len(cases) <= TREE_LIMIT else [c for c in cases if c.status != "PASSED"]
    # Sub-results (the tests inside a pytest case) hang under their pipeline case.
    nodes: dict[int, Tree] = {}
    for case in shown:
        parent = nodes.get(case.parent_index, branch) if case.parent_index is not None else branch
        nodes[case.index] = _case_node(parent, case)
    if len(shown) < len(cases):
        branch.add(f"[dim]… and {count_of(len(cases) - len(shown), 'passed case')} (--all lists them)[/]")
    elif execution.next_cursor is not None:  # the service listed only some cases (`runs show` of a large run)
        more = f"{execution.cases_total - len(cases)} more" if execution.cases_total else "more"
        branch.add(f"[dim]… and {more} (--all lists them, --cursor {escape(execution.next_cursor)} pages)[/]")
    return tree


def _case_node(parent: Tree, case: CaseOut) -> Tree:
    # Sub-results carry their own index too: it is what `runs case KEY N` and `logs --case` take.
    prefix = f"Case {case.index}: " if case.parent_index is None else f"{case.index}: "
    label = f"{prefix}{markup_text(case.name)} - {styled(case.status)} ({format_duration(case.duration_ms)})"
    if case.flaky:
        label += " [magenta]flaky[/]"
    if case.attempts > 1:
        label += f" [dim]{case.attempts} attempts[/]"
    node = parent.add(label)
    if case.error and case.status == "SKIPPED":  # why it did not run
        node.add(f"[yellow]{markup_text(case.error)}[/]")
    elif case.error:
        category = f"[dim]{case.failure_category}:[/] " if case.failure_category else ""
        node.add(f"{category}[red]{markup_text(case.error)}[/]")
    return node


def case_detail(case: CaseDetailOut) -> Group:
    """Everything about one case result, for `runs case`."""
    from rich.console import Group, RenderableType
    from rich.text import Text

    lines: list[RenderableType] = [
        Text.from_markup(f"[bold]Case {case.index}: {markup_text(case.name)}[/] - {styled(case.status)} "
                         f"({format_duration(case.duration_ms)})"),
        Text(printable(f"key: {case.case_key}" + (f"   suite: {case.suite}" if case.suite else ""))),
    ]
    if case.failure_category:
        lines.append(Text(f"category: {case.failure_category}"))
    if case.message:
        lines.append(Text.from_markup(f"[red]{markup_text(case.message)}[/]"))
    for number, attempt in enumerate(case.attempt_details, 1):
        first = (attempt.message or "").strip()
        detail = f": {first.splitlines()[0]}" if first else ""
        lines.append(Text(printable(
            f"attempt {number}: {attempt.status} ({format_duration(attempt.duration_ms)}){detail}")))
    for title, body in (("stack trace", case.stack_trace), ("stdout", case.stdout), ("stderr", case.stderr)):
        if body:
            lines.append(Text.from_markup(f"[dim]-- {title} --[/]"))
            lines.append(Text(printable(body.rstrip())))
    for path in case.attachments:
        lines.append(Text(printable(f"attachment: {path}")))
    if case.log_ref:
        lines.append(Text(printable(f"log: {case.log_ref}")))
    return Group(*lines)


RUN_COLUMNS = ("Run", "Pipeline", "Env", "Status", "Result", "Tests", "Failed", "Errors", "Duration", "Created (UTC)")


def _run_cells(e: ExecutionOut) -> list[str]:
    """One run's cells as text (before any markup): status and result as `runs show` prints them."""
    t = e.totals
    return [
        printable(e.execution_id), printable(e.pipeline_key or "-"), printable(e.environment), e.status,
        e.result or "-", str(t.tests), str(t.failed), str(t.errors), format_duration(e.duration_ms),
        e.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    ]


def runs_table(executions: list[ExecutionOut]) -> Table:
    """Runs with status and result as `runs show` prints them; failed and errors apart; UTC times."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in RUN_COLUMNS:
        table.add_column(column)
    for e in executions:
        cells = [escape(cell) for cell in _run_cells(e)]
        cells[3:5] = styled(e.status), styled(e.result)
        table.add_row(*cells)
    return table


#: Text Rich would change: characters it measures or draws differently, and `:name:` emoji codes.
_NEEDS_RICH = re.compile(r"[^\x20-\x7e]|:\S*:")


def plain_runs_listing(executions: list[ExecutionOut], more: str | None) -> str | None:
    """What `runs list` prints into a pipe or a file, as plain text equal to Rich's rendering of
    `runs_table` there (no styles; every column one space either side, padded to the widest cell);
    None when the output is a terminal or a value needs Rich to be drawn the same."""
    if rich_output():
        return None
    if not executions:
        return "No runs found.\n"
    rows = [_run_cells(e) for e in executions]
    # The time column is ours (digits, `-`, `:`); every other cell and the hint are checked.
    if any(_NEEDS_RICH.search(cell) for row in rows for cell in row[:-1]) or (more and _NEEDS_RICH.search(more)):
        return None
    widths = [max(len(cell) for cell in column) for column in zip(RUN_COLUMNS, *rows, strict=True)]
    lines = ["".join(f" {cell.ljust(width)} " for cell, width in zip(row, widths, strict=True))
             for row in (RUN_COLUMNS, *rows)]
    return "\n".join(lines) + "\n" + (f"More: {more}\n" if more else "")


def rich_output() -> bool:
    """Whether Rich would treat stdout as a terminal (styles, wrapping): a tty, or told so by the environment."""
    if os.environ.get("TTY_COMPATIBLE", "") != "" or os.environ.get("FORCE_COLOR") is not None:
        return True
    try:
        return sys.stdout.isatty()
    except ValueError:  # a closed stream: Rich treats it as no terminal too
        return False


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)
