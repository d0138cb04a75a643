"""Rendering runs for people: the seed's execution tree, run tables, durations like `5m 32s`.

Everything here that came from a report or a caller passes through :func:`printable` (and Rich's
markup escape where markup is used): a test name must never drive the terminal.

Rich is imported by the functions that draw with it (~30-100 ms of a command's start, issue 9): a run
list (:func:`plain_runs_listing`) and the execution tree (:class:`Outline`) going to a pipe or a file,
a CI log, are plain text that needs none of it.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
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


#: A piece of a line: its text as stored (a test name, a message: made printable when drawn), and its
#: Rich style on a terminal (None: plain).
Piece = tuple[str, str | None]


@dataclass(slots=True)
class Outline:
    """Nested lines, drawn by Rich as a tree on a terminal and as the same tree in plain text into a pipe
    or a file (a CI log), which needs no Rich (~40-100 ms of a command's start) and wraps nothing."""

    pieces: tuple[Piece, ...]
    children: list[Outline] = field(default_factory=list)

    def add(self, *pieces: Piece | str) -> Outline:
        child = Outline(tuple((p, None) if isinstance(p, str) else p for p in pieces))
        self.children.append(child)
        return child

    def rich(self) -> Tree:
        from rich.tree import Tree

        def grow(tree: Tree, outline: Outline) -> Tree:
            for child in outline.children:
                grow(tree.add(_markup(child.pieces)), child)
            return tree

        return grow(Tree(_markup(self.pieces)), self)

    def text(self) -> str:
        """The tree as Rich draws it into a pipe (its guides), one line per node, unwrapped."""
        lines = [_plain(self.pieces)]

        def walk(outline: Outline, indent: str) -> None:
            last = len(outline.children) - 1
            for number, child in enumerate(outline.children):
                lines.append(f"{indent}{'└── ' if number == last else '├── '}{_plain(child.pieces)}")
                walk(child, indent + ("    " if number == last else "│   "))

        walk(self, "")
        return "\n".join(lines) + "\n"


def _markup(pieces: tuple[Piece, ...]) -> str:
    return "".join(f"[{style}]{markup_text(text)}[/]" if style else markup_text(text) for text, style in pieces)


def _plain(pieces: tuple[Piece, ...]) -> str:
    return "".join(printable(text) for text, _ in pieces)


def print_outline(outline: Outline) -> None:
    """On a terminal (or when the environment asks for Rich's output) drawn by Rich; else plain text."""
    if rich_output():
        console().print(outline.rich())
    else:
        sys.stdout.write(outline.text())


def _status(value: str | None) -> Piece:
    return (value or "-", STATUS_STYLE.get(value or ""))


def execution_outline(execution: ExecutionOut, *, show_all: bool = False) -> Outline:
    """The execution as the seed draws it: status, result, duration, pipeline, environment, cases."""
    tree = Outline(((f"Execution: {execution.execution_id}", "bold"),))
    tree.add("Status: ", _status(execution.status))
    tree.add("Result: ", _status(execution.result))
    tree.add(f"Duration: {format_duration(execution.duration_ms)}")
    tree.add(f"Pipeline: {execution.pipeline_key or '-'}")
    if execution.rerun_of:
        tree.add(f"Rerun of: {execution.rerun_of}")
    tree.add(f"Environment: {execution.environment}")
    for title, value in (("Branch", execution.branch), ("Revision", execution.revision)):
        if value:
            tree.add(f"{title}: {value}")
    tree.add(f"Trigger: {execution.trigger} by {execution.triggered_by}")
    labels = {k: v for k, v in (execution.labels or {}).items() if k != "result_override"}
    if labels:
        tree.add("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    if execution.error:
        tree.add("Error: ", (execution.error, "red"))
    override = (execution.labels or {}).get("result_override")
    if override:
        tree.add("Result override: ", (override, "yellow"))
    t = execution.totals
    tree.add(f"Totals: {count_of(t.tests, 'test')}, ", (f"{t.passed} passed", "green"), ", ",
             (f"{t.failed} failed", "red"), ", ", (count_of(t.errors, "error"), "bold red"), ", ",
             (f"{t.skipped} skipped", "yellow"), f", {t.flaky} flaky" if t.flaky else "")
    cases = execution.cases or []
    branch = tree.add("Cases:")
    shown = cases if show_all or len(cases) <= TREE_LIMIT else [c for c in cases if c.status != "PASSED"]
    # Sub-results (the tests inside a pytest case) hang under their pipeline case.
    nodes: dict[int, Outline] = {}
    for case in shown:
        parent = nodes.get(case.parent_index, branch) if case.parent_index is not None else branch
        nodes[case.index] = _case_node(parent, case)
    if len(shown) < len(cases):
        branch.add((f"… and {count_of(len(cases) - len(shown), 'passed case')} (--all lists them)", "dim"))
    elif execution.next_cursor is not None:  # the service listed only some cases (`runs show` of a large run)
        more = f"{execution.cases_total - len(cases)} more" if execution.cases_total else "more"
        branch.add((f"… and {more} (--all lists them, --cursor {execution.next_cursor} pages)", "dim"))
    return tree


def _case_node(parent: Outline, case: CaseOut) -> Outline:
    # Sub-results carry their own index too: it is what `runs case KEY N` and `logs --case` take.
    prefix = f"Case {case.index}: " if case.parent_index is None else f"{case.index}: "
    node = parent.add(f"{prefix}{case.name} - ", _status(case.status), f" ({format_duration(case.duration_ms)})",
                      (" flaky", "magenta") if case.flaky else "",
                      (f" {case.attempts} attempts", "dim") if case.attempts > 1 else "")
    if case.error and case.status == "SKIPPED":  # why it did not run
        node.add((case.error, "yellow"))
    elif case.error:
        node.add((f"{case.failure_category}: ", "dim") if case.failure_category else "", (case.error, "red"))
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
