"""`testledger run`, `rerun`, `cancel`, `refresh` and `logs`: execute pipelines here and watch or steer their runs."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

from testledger.cli import context as ctx
from testledger.lifecycle import CANCELLED, NOT_PASSED, PASSED

if TYPE_CHECKING:
    from rich.console import RenderableType

    from testledger.execute.executor import RunEvent
    from testledger.schemas import LaunchedOut


def _looks_like_file(target: str) -> bool:
    return target.endswith((".yaml", ".yml", ".json")) or "/" in target or Path(target).is_file()


class Progress:
    """Live progress of a run: counters updated by executor threads, drawn at a fixed rate by Rich
    (never once per case), or one plain line per finished case when the output is not a terminal."""

    def __init__(self, run_key: str, total: int, *, live: bool, stream: TextIO) -> None:
        from testledger.cli.render import format_duration
        from testledger.execute.executor import CaseFinished

        self.run_key, self.total, self.live, self.stream = run_key, total, live, stream
        self.lock = threading.Lock()
        self.done = self.passed = self.failed = 0
        self.running: dict[int, str] = {}
        self.started = time.monotonic()
        # Looked up once: `event` runs twice per case, on the executor's threads.
        self._finished, self._duration = CaseFinished, format_duration
        self._width = len(str(total))

    def event(self, event: RunEvent) -> None:
        with self.lock:
            if not isinstance(event, self._finished):
                self.running[event.index] = event.key
                return
            self.running.pop(event.index, None)
            self.done += 1
            self.passed += event.status == PASSED
            self.failed += event.status in NOT_PASSED
            line = self._line(event) if not self.live else None
        if line:
            self.stream.write(line)

    def _line(self, event: Any) -> str:
        extra = " (flaky)" if event.flaky else ""
        error = f": {event.error.splitlines()[0]}" if event.error and event.status != PASSED else ""
        return (f"[{self.done:>{self._width}}/{self.total}] {event.status.upper():<7} {event.index}: {event.key} "
                f"({self._duration(event.duration_ms)}){extra}{error}\n")

    def __rich__(self) -> RenderableType:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        from testledger.cli.render import format_duration

        with self.lock:
            running = ", ".join(self.running.values())
            done, passed, failed = self.done, self.passed, self.failed
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            f"[bold]{self.run_key}[/]", ProgressBar(total=self.total, completed=done, width=30),
            f"{done}/{self.total} cases", f"[green]{passed} passed[/]", f"[red]{failed} failed[/]",
            format_duration((time.monotonic() - self.started) * 1000),
        )
        table = Table.grid()
        table.add_row(grid)
        if running:
            table.add_row(f"[cyan]running:[/] {running[:200]}")
        return table


def _prepare_run(
    target: str, *, workspace: str | None, env: str | None, overrides: dict[str, str], parallel: int | None
) -> LaunchedOut:
    """Read the file when given one, then let the launch service create the pending run."""
    from testledger.provenance import from_environment
    from testledger.services.launch import prepare_run

    document = None
    if _looks_like_file(target):
        from testledger.cli.pipelines import read_pipeline_file

        document = read_pipeline_file(Path(target))
    ws = workspace or (document.spec.workspace if document else None) or ctx.resolve_workspace(None)
    with ctx.store().write_connection() as db:
        return prepare_run(
            db, workspace=ws, pipeline=document or target, provenance=from_environment(),
            allowed_environments=ctx.settings().environments, environment=env, overrides=overrides,
            workdir=Path(target).resolve().parent if document else Path.cwd(), parallelism=parallel,
        )


def run(
    target: str = typer.Argument(..., help="Pipeline file (applied first) or the key of a stored pipeline."),
    env: str | None = typer.Option(
        None, "--env", "-e",
        help=f"Environment (default: the pipeline's, else {ctx.DEFAULT_ENVIRONMENT_HELP}).",
    ),
    param: list[str] | None = typer.Option(
        None, "--param", "-P", help="KEY=VALUE parameter; repeat for more.", metavar="KEY=VALUE"),
    parallel: int | None = typer.Option(None, "--parallel", "-j", help="Cases run at once (default: the pipeline's)."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the finished run as JSON (as `runs show --json`)."),
) -> None:
    """Run a pipeline here; exits 0 when it passed, 1 when it failed, 2 on error or timeout."""
    overrides = ctx.parse_pairs(param, flag="--param")
    server = ctx.remote()
    if server is not None:
        from testledger.cli.remote_run import run_on_server

        run_on_server(server, target, workspace=workspace, env=env, overrides=overrides, parallel=parallel,
                      as_json=as_json, progress=Progress, wait=_wait)
    launched = _prepare_run(target, workspace=workspace, env=env, overrides=overrides, parallel=parallel)
    _execute(launched.run_key, workspace=launched.workspace, total=launched.cases, workdir=launched.workdir,
             overrides=overrides, parallel=parallel, as_json=as_json)


def _execute(
    key: str, *, workspace: str, total: int, workdir: Path, overrides: dict[str, str], parallel: int | None,
    as_json: bool, heading: str | None = None,
) -> None:
    """Execute a pending run here with live progress, print it as `runs show` does, exit with its result."""
    from testledger.cli.runs import exit_code
    from testledger.execute.executor import RunRequest
    from testledger.execute.local import LocalExecutor
    from testledger.execute.logstore import FileLogStore

    settings = ctx.settings()
    live = not as_json and sys.stdout.isatty()
    progress = Progress(key, total, live=live, stream=sys.stderr if as_json else sys.stdout)
    store = ctx.store()
    executor = LocalExecutor(
        store, logs=FileLogStore(settings.logs_dir), attachments_root=settings.attachments_dir,
        heartbeat_seconds=settings.heartbeat_seconds, on_event=progress.event,
    )
    if not as_json and not live:
        from testledger.cli.render import count_of

        sys.stdout.write(heading or f"Run {key}: {count_of(total, 'case')}\n")
    executor.submit(RunRequest(run_key=key, overrides=overrides, workdir=workdir, parallelism=parallel))
    _wait(executor, key, progress if live else None)
    from testledger.services.runs import show_execution

    with store.read_connection() as db:  # bounded whatever the run's size, as `runs show` draws it
        execution = show_execution(db, workspace=workspace, key=key)
    if as_json:
        ctx.print_json(execution)
    else:
        from testledger.cli.render import execution_outline, print_outline

        print_outline(execution_outline(execution))
    raise typer.Exit(exit_code(execution.status, execution.result))


def rerun(
    key: str = typer.Argument(..., help="Key of a finished run of a stored pipeline, e.g. WKS-0601-12."),
    failed: bool = typer.Option(
        True, "--failed/--all",
        help="Rerun the cases that failed, errored or never ran, with the cases they need (default); or all of them.",
    ),
    param: list[str] | None = typer.Option(
        None, "--param", "-P", metavar="KEY=VALUE",
        help="A secret parameter's value, when the original run was given it with --param (it is never stored).",
    ),
    parallel: int | None = typer.Option(None, "--parallel", "-j", help="Cases run at once (default: the pipeline's)."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the finished run as JSON (as `runs show --json`)."),
) -> None:
    """Run again, here, the failed cases of a finished run: a new run of the same pipeline version,
    environment and parameters, linked to it (`Rerun of:`). Exits as `run` does; 0 with a note when
    nothing failed."""
    from testledger.cli.render import count_of
    from testledger.provenance import from_environment
    from testledger.services.rerun import NothingToRerun, rerun_cases

    given = ctx.parse_pairs(param, flag="--param")
    try:
        with ctx.store().write() as db:
            launched = rerun_cases(
                db, workspace=ctx.run_workspace(workspace, key), key=key, provenance=from_environment(),
                allowed_environments=ctx.settings().environments, workdir=Path.cwd(), failed_only=failed,
                parameters=given, parallelism=parallel,
            )
    except NothingToRerun as exc:
        typer.echo(str(exc))
        return
    reasons = ", ".join(f"{c.key} ({c.reason})" for c in launched.cases[:10])
    more = f", … {len(launched.cases) - 10} more" if len(launched.cases) > 10 else ""
    heading = f"Run {launched.run_key} reruns {count_of(len(launched.cases), 'case')} of {key}: {reasons}{more}\n"
    if as_json:
        sys.stderr.write(heading)
    _execute(launched.run_key, workspace=launched.workspace, total=len(launched.cases), workdir=launched.workdir,
             overrides=launched.overrides, parallel=parallel, as_json=as_json, heading=heading)


def _wait(executor: Any, key: str, progress: Progress | None) -> None:
    """Wait for the run, drawing live progress; Ctrl-C or SIGTERM cancels it (finished results are kept)."""
    import signal

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() else None
    try:
        if progress is None:
            _join(executor, key)
            return
        from rich.live import Live

        from testledger.cli.render import console

        with Live(progress, console=console(), refresh_per_second=8, transient=True):
            _join(executor, key)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _join(executor: Any, key: str) -> None:
    while True:
        try:
            if executor.wait(key, timeout=0.5):
                return
        except KeyboardInterrupt:
            sys.stderr.write(f"cancelling {key}…\n")
            executor.cancel(key)


def cancel(
    key: str = typer.Argument(..., help="Run key, e.g. WKS-0601-12."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
) -> None:
    """Cancel a run: at once when no executor runs it (pending, `runs start`, a pytest session), else
    when its executor next checks in (within a heartbeat)."""
    from testledger.services.execution import request_cancel

    execution = ctx.write(request_cancel, workspace=ctx.run_workspace(workspace, key), key=key)
    if as_json:
        ctx.print_json(execution)
    elif execution.status == CANCELLED.upper():
        typer.echo(f"{key}: cancelled")
    else:
        wait = ctx.settings().heartbeat_seconds
        typer.echo(f"{key}: cancel requested; its executor stops it within about {wait:g}s")


def refresh(
    key: str = typer.Argument(..., help="Run key."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
) -> None:
    """Ask for a run's true state; a run whose executor is gone or silent is ended as error."""
    from testledger.services.execution import refresh_run

    execution = ctx.write(
        refresh_run, workspace=ctx.run_workspace(workspace, key), key=key,
        stale_after=ctx.settings().stale_after_seconds,
    )
    if as_json:
        ctx.print_json(execution)
        return
    from testledger.cli.render import execution_outline, print_outline

    print_outline(execution_outline(execution))


def logs(
    key: str = typer.Argument(..., help="Run key."),
    case: int = typer.Option(0, "--case", "-c", help="Case number, 0-based, as `runs show` numbers them."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing while the run is running."),
    workspace: str | None = ctx.workspace_option(),
) -> None:
    """Print a case's log as text (stdout and stderr, secrets masked): there is no --json."""
    from testledger.execute.logstore import FileLogStore
    from testledger.services.logs import find_case_log

    server = ctx.remote()
    if server is not None:
        from testledger.cli.remote_run import print_server_log

        print_server_log(server, key, case, follow=follow)
        return
    store = ctx.store()
    ws = ctx.run_workspace(workspace, key)
    log_store = FileLogStore(ctx.settings().logs_dir)
    with store.read() as db:
        found = find_case_log(db, workspace=ws, key=key, index=case, log_store=log_store)
    if found.stored is not None:  # an ingested or plugin result: its output is stored with it
        sys.stdout.write(found.stored.decode("utf-8", "replace"))
        return
    assert found.ref is not None
    _print_log(log_store, found.ref, follow=follow, still_running=lambda: _running(store, ws, key, case))


def _running(store: Any, workspace: str, key: str, index: int) -> bool:
    from testledger.services.execution import case_log_ref

    with store.read() as db:
        found = case_log_ref(db, workspace=workspace, key=key, index=index)
    return found.running and not found.finished


def _print_log(log_store: Any, ref: str, *, follow: bool, still_running: Any) -> None:
    import codecs

    from testledger.errors import NotFound

    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    reader = None
    while True:
        if reader is None:
            try:
                reader = log_store.open_reader(ref)
            except FileNotFoundError:
                if not follow or not still_running():
                    raise NotFound(f"case {ref.rsplit('/', 1)[-1].split('.')[0]} has no log: it printed nothing "
                                   "or has not started") from None
        if reader is not None:
            while chunk := reader.read(256 * 1024):
                sys.stdout.write(decoder.decode(chunk))
            sys.stdout.flush()
        if not follow or not still_running():
            if reader is not None:
                sys.stdout.write(decoder.decode(reader.read(), final=True))
                reader.close()
            return
        time.sleep(0.3)
