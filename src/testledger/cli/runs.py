"""`testledger runs`: list, show, start and finish runs."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta

import typer

from testledger.cli import context as ctx

app = typer.Typer(
    help="List, show and delete runs and their cases; start and finish runs by hand.", no_args_is_help=True)

_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(value: str | None, *, flag: str) -> datetime | None:
    """An ISO date or datetime (UTC unless it says otherwise), or an age like `30m`, `24h`, `7d`, `2w`."""
    from testledger.errors import Invalid

    if not value:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{flag} expects an ISO date like 2026-06-01 or an age like 7d, got '{value}'") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("list")
def list_runs(
    pipeline: str | None = typer.Option(None, "--pipeline", "-p", help="Only runs of this pipeline key."),
    status: str | None = typer.Option(
        None, "--status", "-s",
        help="running, passed, failed, error, skipped, pending, completed, cancelled or timeout.",
    ),
    env: str | None = typer.Option(None, "--env", "-e", help="Only runs in this environment."),
    branch: str | None = typer.Option(None, "--branch", "-b", help="Only runs of this branch."),
    revision: str | None = typer.Option(None, "--revision", help="Only runs of this commit SHA."),
    trigger: str | None = typer.Option(
        None, "--trigger", help="Only runs started so: manual, plan, gatekeeper or api."),
    label: list[str] | None = typer.Option(
        None, "--label", help="Only runs with this KEY=VALUE label; repeat to require more.", metavar="KEY=VALUE"),
    since: str | None = typer.Option(None, "--from", "--since", help="Created at or after: ISO date or age (7d)."),
    until: str | None = typer.Option(None, "--to", "--until", help="Created before: ISO date or age."),
    limit: int = typer.Option(50, "--limit", "-n", help="Runs per page (1-500)."),
    cursor: str | None = typer.Option(None, "--cursor", help="Continue after a previous page."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array (the next cursor goes to stderr)."),
) -> None:
    """List runs, newest first."""
    from testledger.services.runs import list_executions

    labels = ctx.parse_pairs(label, flag="--label")
    page = ctx.read_rows(
        list_executions, workspace=ctx.resolve_workspace(workspace), pipeline_key=pipeline, status=status,
        environment=ctx.environment(env) if env else None, branch=branch, revision=revision, trigger=trigger,
        labels=labels or None, date_from=parse_when(since, flag="--from"), date_to=parse_when(until, flag="--to"),
        limit=limit, cursor=cursor,
    )
    if as_json:
        ctx.print_json([item.model_dump(mode="json") for item in page.items])
        if page.next_cursor:
            sys.stderr.write(f"next cursor: {page.next_cursor}\n")
        return
    from testledger.cli.render import console, plain_runs_listing, runs_table

    plain = plain_runs_listing(page.items, _next_page_command(page.next_cursor) if page.next_cursor else None)
    if plain is not None:  # a pipe or a file: the same text without importing Rich
        sys.stdout.write(plain)
        return
    out = console()
    if not page.items:
        out.print("No runs found.")
        return
    table = runs_table(page.items)
    if not out.is_terminal:  # a log or a pipe has no width to fit: never cut a key or a time short
        out.width = max(out.width, out.measure(table, options=out.options.update_width(10_000)).maximum)
    out.print(table)
    if page.next_cursor:
        from rich.markup import escape

        out.print(f"[dim]More: {escape(_next_page_command(page.next_cursor))}[/]", soft_wrap=True)


@app.command("show")
def show(
    key: str = typer.Argument(..., help="Run key, e.g. WKS-0601-12."),
    show_all: bool = typer.Option(False, "--all", help="List every case, even in very large runs (slow for 100k)."),
    cursor: str | None = typer.Option(None, "--cursor", help="List cases in order from this cursor (0: the first)."),
    limit: int | None = typer.Option(None, "--limit", "-n", help="Cases per listing (default 200, at most 10000)."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the execution as JSON."),
) -> None:
    """Show a run and its cases as the execution tree.

    A run of at most 200 cases lists them all; a larger one lists the cases that did not pass (at
    most --limit) and says how to page through the rest with --cursor, or list them all with --all.
    """
    from testledger.cli.render import execution_outline, print_outline
    from testledger.services.runs import SHOW_LIMIT, get_execution, show_execution

    ws = ctx.run_workspace(workspace, key)
    if show_all:
        execution = ctx.read_rows(get_execution, workspace=ws, key=key)
    elif cursor is not None:
        execution = ctx.read_rows(get_execution, workspace=ws, key=key, cursor=cursor, case_limit=limit or SHOW_LIMIT)
    else:
        execution = ctx.read_rows(show_execution, workspace=ws, key=key, limit=limit or SHOW_LIMIT)
    if as_json:
        ctx.print_json(execution)
        return
    print_outline(execution_outline(execution, show_all=show_all or cursor is not None))


@app.command("case")
def case(
    key: str = typer.Argument(..., help="Run key."),
    index: int = typer.Argument(..., help="Case number, 0-based, as `runs show` numbers them."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the case as JSON."),
) -> None:
    """Show one case result in full: message, stack trace, output, attempts, attachments, log."""
    from testledger.services.runs import get_case

    detail = ctx.read(get_case, workspace=ctx.run_workspace(workspace, key), key=key, index=index)
    if as_json:
        ctx.print_json(detail)
        return
    from testledger.cli.render import case_detail, console

    console().print(case_detail(detail))


@app.command("start")
def start(
    pipeline: str = typer.Option(..., "--pipeline", "-p", help="Pipeline key (created if new)."),
    env: str | None = ctx.environment_option(),
    revision: str | None = typer.Option(None, "--revision", help="Commit SHA (default: from the CI)."),
    branch: str | None = typer.Option(None, "--branch", "-b", help="Branch (default: from the CI)."),
    build_url: str | None = typer.Option(None, "--build-url", help="CI build URL (default: from the CI)."),
    label: list[str] | None = typer.Option(
        None, "--label", help="KEY=VALUE label; repeat for more.", metavar="KEY=VALUE"),
    trigger: str | None = typer.Option(
        None, "--trigger", help="manual, plan, gatekeeper or api (default: gatekeeper under CI, else manual)."
    ),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON instead of its key."),
) -> None:
    """Start a run by hand (status running) and print its key, for CI scripts to bracket a job."""
    from testledger.provenance import from_environment
    from testledger.services.runs import open_run

    provenance = from_environment(trigger=trigger, revision=revision, branch=branch, build_url=build_url)
    execution = ctx.write(
        open_run, workspace=ctx.resolve_workspace(workspace), pipeline_key=pipeline, environment=ctx.environment(env),
        allowed_environments=ctx.settings().environments, provenance=provenance,
        labels=ctx.parse_pairs(label, flag="--label") or None,
    )
    if as_json:
        ctx.print_json(execution)
    else:
        typer.echo(execution.execution_id)


@app.command("finish")
def finish(
    key: str = typer.Argument(..., help="Run key."),
    status: str = typer.Option("completed", "--status", help="completed, cancelled or timeout."),
    result: str | None = typer.Option(
        None, "--result", help="passed, failed, error or skipped (default: derived from the cases)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Record a --result milder than the cases give (passed over failures); noted on the run."
    ),
    no_fail: bool = typer.Option(False, "--no-fail", help="Exit 0 even when the run failed."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
) -> None:
    """Finish a run; exits 1 when it failed and 2 on error, like `testledger run`."""
    from testledger.services.runs import finish_run, show_execution

    ws = ctx.run_workspace(workspace, key)
    server = ctx.remote()
    if server is not None:  # the server answers with the run as `runs show` draws it
        execution = server.finish_run(workspace=ws, key=key, status=status, result=result, force=force)
    else:
        with ctx.store().write() as db:
            finish_run(db, workspace=ws, key=key, status=status, result=result, force=force, actor=ctx.actor())
            execution = show_execution(db, workspace=ws, key=key)
    if as_json:
        ctx.print_json(execution)
    else:
        from testledger.cli.render import execution_outline, print_outline

        print_outline(execution_outline(execution))
    raise typer.Exit(0 if no_fail else exit_code(execution.status, execution.result))


def _next_page_command(cursor: str) -> str:
    """The command that lists the next page: this one as typed, with the cursor replaced."""
    import shlex

    args = sys.argv[1:]
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--cursor":
            skip = True
        elif not arg.startswith("--cursor="):
            kept.append(arg)
    return shlex.join(["testledger", *kept, "--cursor", cursor])


@app.command("delete")
def delete(
    keys: list[str] = typer.Argument(..., help="Run keys.", metavar="KEY..."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the deleted keys as a JSON array."),
) -> None:
    """Delete finished runs with their results, report files, logs and attachments.

    Their results leave the analytics too (health, flaky, slow, clusters).
    Asks first on a terminal; elsewhere it refuses without --yes. A run still open is refused:
    cancel it first.
    """
    import shutil

    from testledger.cli.render import count_of
    from testledger.services.runs import delete_runs

    ws = ctx.run_workspace(workspace, keys[0])
    ctx.confirm(f"Delete {count_of(len(keys), 'run')} ({', '.join(keys)}) and everything recorded for them?", yes=yes)
    with ctx.store().write() as db:
        deleted = delete_runs(db, workspace=ws, keys=keys)
    settings = ctx.settings()
    for key in deleted:  # after the commit: a failed delete leaves the files of runs that still exist
        for root in (settings.logs_dir, settings.attachments_dir):
            shutil.rmtree(root / key, ignore_errors=True)
    if as_json:
        ctx.print_json(deleted)
    else:
        typer.echo(f"deleted {count_of(len(deleted), 'run')}: {', '.join(deleted)}")


def exit_code(status: str, result: str | None) -> int:
    """0 passed or skipped; 1 failed; 2 error, timeout; cancelled counts as failed."""
    from testledger.lifecycle import CANCELLED, ERROR, TIMEOUT

    if status.lower() == TIMEOUT:
        return ctx.EXIT_ERROR
    if status.lower() == CANCELLED:
        return ctx.EXIT_FAILED
    return ctx.RESULT_EXIT.get((result or ERROR).lower(), ctx.EXIT_ERROR)
