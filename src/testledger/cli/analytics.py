"""`testledger health|flaky|slow|clusters|compare`, `tests history|alias`, `quarantine add|list|remove` and
`analytics fold`."""

from __future__ import annotations

from typing import Any

import typer

from testledger.cli import context as ctx

tests_app = typer.Typer(help="A test's history, and linking a renamed test to its old name.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Set tests aside (they keep running and recording).", no_args_is_help=True)
#: `testledger analytics ...`: the rollups themselves.
app = typer.Typer(help="The analytics rollups: fold finished runs into them.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    for name, command in (("health", health), ("flaky", flaky), ("slow", slow), ("clusters", clusters),
                          ("compare", compare)):
        app.command(name)(command)
    app.add_typer(tests_app, name="tests")
    app.add_typer(quarantine_app, name="quarantine")


def _pipeline() -> Any:
    return typer.Option(None, "--pipeline", "-p", help="Only this pipeline key.")


def _days(default: int) -> Any:
    return typer.Option(default, "--days", "-d", help=f"Window in days (default {default}).")


def _json() -> Any:
    return typer.Option(False, "--json", help="Print JSON instead of a table.")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]], empty: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    from testledger.cli.render import console

    out = console()
    if not rows:
        out.print(empty)
        return
    table = Table(box=None, header_style="bold")
    for i, h in enumerate(headers):
        # The test (or pipeline) name must stay whole for copy and paste; other columns wrap first.
        table.add_column(h, no_wrap=i < 2, overflow="fold")
    for row in rows:
        table.add_row(*(escape("-" if c is None else str(c)) for c in row))
    out.print(table)


def health(
    pipeline: str | None = _pipeline(),
    env: str | None = typer.Option(None, "--env", "-e", help="Only this environment."),
    branch: str | None = typer.Option(None, "--branch", "-b", help="Only this branch."),
    days: int = _days(7),
    exclude_quarantined: bool = typer.Option(
        False, "--exclude-quarantined", help="A run failed only by quarantined tests counts as passed."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """Pipeline health per pipeline, environment and branch: pass rate, durations, streak, last green/red."""
    from testledger.cli.render import format_duration
    from testledger.services.analytics.health import pipeline_health

    report = ctx.read(pipeline_health, workspace=ctx.resolve_workspace(workspace), pipeline=pipeline,
                             environment=ctx.environment(env) if env else None,
                             branch=branch, days=days, exclude_quarantined=exclude_quarantined)
    if as_json:
        ctx.print_json(report)
        return
    _table(("Pipeline", "Env", "Branch", "Runs", "Pass rate", "Mean", "p95", "Streak", "Last green", "Last red"), [
        (g.pipeline_key, g.environment, g.branch, g.runs, _pct(g.pass_rate), format_duration(g.mean_duration_ms),
         format_duration(g.p95_duration_ms), f"{g.streak} {g.streak_outcome or ''}".strip(),
         g.last_green and g.last_green.execution_id, g.last_red and g.last_red.execution_id)
        for g in report.groups
    ], f"No finished runs in the last {days} days.")
    if report.trend:
        _table(("Day", "Runs", "Passed", "Failed", "Pass rate"),
               [(d.day, d.runs, d.passed, d.failed, _pct(d.pass_rate)) for d in report.trend], "")


def flaky(
    pipeline: str | None = _pipeline(),
    branch: str | None = typer.Option(None, "--branch", "-b", help="Only evidence from this branch."),
    days: int = _days(14),
    limit: int = typer.Option(50, "--limit", "-n", help="Tests to list."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """Flaky tests, highest score first, with their evidence: same revision, retries, flip rate."""
    from testledger.services.analytics.flaky import flaky_tests

    report = ctx.read(flaky_tests, workspace=ctx.resolve_workspace(workspace), pipeline=pipeline, branch=branch,
                         days=days, limit=limit)
    if as_json:
        ctx.print_json(report)
        return
    _table(("Test", "Score", "Same rev", "Retries", "Flip rate", "Last seen", "Runs"), [
        (t.test + (" [quarantined]" if t.quarantined else ""), f"{t.score:.2f}", t.same_revision, t.retries,
         _pct(t.flip_rate), f"{t.last_seen:%Y-%m-%d %H:%M}", ", ".join(t.runs[:3]))
        for t in report.tests
    ], f"No flaky tests in the last {days} days.")


def slow(
    pipeline: str | None = _pipeline(),
    env: str | None = typer.Option(None, "--env", "-e", help="Only runs in this environment (reads raw results)."),
    branch: str | None = typer.Option(None, "--branch", "-b", help="Only runs on this branch (reads raw results)."),
    days: int = _days(7),
    limit: int = typer.Option(20, "--limit", "-n", help="Tests to list."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """Slowest tests by p95 duration, and tests that got much slower than their own baseline today.

    With --env or --branch the answer is computed from the raw results of the matching runs (the daily
    rollup has neither), so it is slower on large stores.
    """
    from testledger.cli.render import format_duration
    from testledger.services.analytics.slow import slow_tests

    report = ctx.read(slow_tests, workspace=ctx.resolve_workspace(workspace), pipeline=pipeline,
                      environment=ctx.environment(env) if env else None, branch=branch, days=days, limit=limit)
    if as_json:
        ctx.print_json(report)
        return
    _table(("Test", "Results", "p50", "p95", "Max", "Mean"), [
        (t.test, t.results, format_duration(t.p50_ms), format_duration(t.p95_ms), format_duration(t.max_ms),
         format_duration(t.mean_ms)) for t in report.tests
    ], f"No timed results in the last {days} days.")
    if report.regressions:
        _table(("Regression", "Today max", "Baseline mean", "Baseline max"), [
            (r.test, format_duration(r.recent_max_ms), format_duration(r.baseline_mean_ms),
             format_duration(r.baseline_max_ms)) for r in report.regressions], "")


def clusters(
    cluster: int | None = typer.Argument(None, help="A cluster id, to set its category with --category."),
    category: str | None = typer.Option(
        None, "--category", help="With a cluster id: assertion, timeout, error or infrastructure; 'auto' clears it."),
    pipeline: str | None = _pipeline(),
    days: int = _days(7),
    limit: int = typer.Option(50, "--limit", "-n", help="Clusters to list."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """Failure clusters: the same failure across tests and runs, and failure categories per day."""
    from testledger.errors import Invalid
    from testledger.services.analytics.clusters import failure_clusters, set_cluster_category

    ws = ctx.resolve_workspace(workspace)
    if cluster is not None or category is not None:
        if cluster is None or category is None:
            raise Invalid("to set a category give both: `testledger clusters ID --category CATEGORY`")
        out = ctx.write(set_cluster_category, workspace=ws, cluster=cluster,
                                   category=None if category == "auto" else category)
        ctx.print_json(out) if as_json else typer.echo(f"cluster {out.id}: category {out.category or 'auto'}")
        return
    report = ctx.read(failure_clusters, workspace=ws, pipeline=pipeline, days=days, limit=limit)
    if as_json:
        ctx.print_json(report)
        return
    _table(("Id", "Count", "Tests", "Category", "Failure", "Last seen"), [
        (c.id, c.count, c.tests, c.category + ("*" if c.category_overridden else "") if c.category else None,
         f"{c.error_type + ': ' if c.error_type else ''}{c.pattern}"[:100], f"{c.last_seen:%Y-%m-%d %H:%M}")
        for c in report.clusters
    ], f"No failures in the last {days} days.")


def compare(
    run: str = typer.Argument(..., help="The run to look at."),
    base: str | None = typer.Argument(None, help="The run to compare with (default: the last passing run of "
                                                 "the pipeline on the same branch)."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """What changed between two runs: new failures, fixed, still failing, new and removed tests, slower tests."""
    from testledger.cli.render import format_duration
    from testledger.services.analytics.compare import compare_runs

    result = ctx.read(compare_runs, workspace=ctx.resolve_workspace(workspace), run=run, base=base)
    if as_json:
        ctx.print_json(result)
        return
    typer.echo(f"{result.run} compared with {result.base}")
    rows = []
    for title, changes in (("new failure", result.new_failures), ("fixed", result.fixed),
                           ("still failing", result.still_failing), ("new test", result.new_tests),
                           ("removed test", result.removed_tests), ("slower", result.duration_regressions)):
        rows += [(title, c.test, c.base_status, c.status, format_duration(c.base_duration_ms),
                  format_duration(c.duration_ms), c.error) for c in changes]
    _table(("Change", "Test", "Before", "Now", "Before", "Now", "Error"), rows, "No changes.")


@tests_app.command("history")
def history(
    name: str = typer.Argument(..., help="classname::name or classname.name, e.g. api.Login::test_token."),
    limit: int = typer.Option(50, "--limit", "-n", help="Results to list (1-500)."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """A test's recent results with durations, revisions and runs (old names included)."""
    from testledger.cli.render import format_duration
    from testledger.services.analytics.history import test_history

    found = ctx.read(test_history, workspace=ctx.resolve_workspace(workspace), test=name, limit=limit)
    if as_json:
        ctx.print_json(found)
        return
    typer.echo(found.test + (f" (formerly {', '.join(found.aliases)})" if found.aliases else "")
               + (" [quarantined]" if found.quarantined else ""))
    _table(("Run", "Created", "Pipeline", "Branch", "Revision", "Status", "Duration", "Error"), [
        (r.execution_id, f"{r.created_at:%Y-%m-%d %H:%M}", r.pipeline_key, r.branch, (r.revision or "")[:12] or None,
         r.status, format_duration(r.duration_ms), r.error) for r in found.results
    ], "No results recorded.")


@tests_app.command("alias")
def alias(
    old: str = typer.Argument(..., help="The test's old name."),
    new: str = typer.Argument(..., help="Its new name (both must have been recorded)."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """Link a renamed test to its old name, so its history continues."""
    from testledger.services.analytics.identity import link_renamed_test

    out = ctx.write(link_renamed_test, workspace=ctx.resolve_workspace(workspace), old=old, new=new, actor=ctx.actor())
    ctx.print_json(out) if as_json else typer.echo(f"{out.old.test} is now {out.new.test}")


@quarantine_app.command("add")
def quarantine_add(
    name: str = typer.Argument(..., help="classname::name or classname.name."),
    owner: str = typer.Option(..., "--owner", help="Who will fix it."),
    reason: str = typer.Option(..., "--reason", help="Why it is set aside."),
    expires: str | None = typer.Option(None, "--expires", help="When it lifts itself: an age like 14d or a date."),
    pipeline: str | None = _pipeline(),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """Quarantine a test: it keeps running and recording; health can leave it out."""
    from testledger.services.analytics.quarantine import add_quarantine

    out = ctx.write(add_quarantine, workspace=ctx.resolve_workspace(workspace), test=name, owner=owner, reason=reason,
                         actor=ctx.actor(), expires_at=_future(expires), pipeline=pipeline)
    if as_json:
        ctx.print_json(out)
    else:
        until = f" until {out.expires_at:%Y-%m-%d %H:%M} UTC" if out.expires_at else ""
        typer.echo(f"{out.test} quarantined{until} (owner {out.owner})")


def _future(value: str | None) -> Any:
    """`14d` means 14 days from now here (runs' filters read ages as the past)."""
    from datetime import UTC, datetime

    from testledger.cli.runs import parse_when

    when = parse_when(value, flag="--expires")
    if when is not None and when < datetime.now(UTC) and value and value[-1] in "mhdw":
        return datetime.now(UTC) + (datetime.now(UTC) - when)
    return when


@quarantine_app.command("list")
def quarantine_list(
    include_expired: bool = typer.Option(False, "--all", help="Include expired (lifted) quarantines."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = _json(),
) -> None:
    """Quarantined tests with owner, reason and expiry."""
    from testledger.services.analytics.quarantine import list_quarantines

    items = ctx.read(list_quarantines, workspace=ctx.resolve_workspace(workspace), include_expired=include_expired)
    if as_json:
        ctx.print_json([q.model_dump(mode="json") for q in items])
        return
    _table(("Test", "Owner", "Reason", "Expires", "Active"), [
        (q.test, q.owner, q.reason, q.expires_at and f"{q.expires_at:%Y-%m-%d %H:%M}", "yes" if q.active else "no")
        for q in items
    ], "No tests are quarantined.")


@quarantine_app.command("remove")
def quarantine_remove(
    name: str = typer.Argument(..., help="classname::name or classname.name."),
    workspace: str | None = ctx.workspace_option(),
) -> None:
    """Lift a quarantine now."""
    from testledger.services.analytics.quarantine import remove_quarantine

    ctx.write(remove_quarantine, workspace=ctx.resolve_workspace(workspace), test=name)
    typer.echo(f"{name} is no longer quarantined")


@app.command("fold")
def fold(as_json: bool = _json()) -> None:
    """Fold the finished runs queued since the last fold into the analytics rollups, now.

    A run that ends only queues its id; every analytics answer folds the queue first, so this is never
    needed for correct answers. Run it from cron or a worker (e.g. every minute) so the first question
    after many ingests does not wait for their fold. Safe to run in several processes at once."""
    from testledger.services.analytics.rollups import fold_queued_runs

    report = ctx.read(fold_queued_runs)
    if as_json:
        ctx.print_json(report)
        return
    from testledger.cli.render import count_of

    typer.echo(f"Folded {count_of(report.runs, 'queued run')} in {count_of(report.batches, 'batch', 'batches')} "
               f"({report.seconds:.2f} s); {report.pending} queued since.")
