"""`testledger ingest` and `testledger export`: reports in, reports out."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from testledger.cli import context as ctx

if TYPE_CHECKING:
    from testledger.schemas import ExecutionOut, IngestOut

SUMMARY_FAILURES = 20


def ingest(
    reports: list[str] = typer.Argument(
        ..., help="Report files, folders (searched recursively) or globs.", metavar="REPORT..."),
    pipeline: str | None = typer.Option(
        None, "--pipeline", "-p",
        help="Required unless --run is given: the pipeline key the run belongs to (created as a report source if new).",
    ),
    env: str | None = ctx.environment_option(),
    revision: str | None = typer.Option(None, "--revision", help="Commit SHA (default: from the CI)."),
    branch: str | None = typer.Option(None, "--branch", "-b", help="Branch (default: from the CI)."),
    build_url: str | None = typer.Option(None, "--build-url", help="CI build URL (default: from the CI)."),
    label: list[str] | None = typer.Option(
        None, "--label", help="KEY=VALUE label; repeat for more.", metavar="KEY=VALUE"),
    run_key: str | None = typer.Option(None, "--run", help="Add to this open run instead of creating one."),
    trigger: str | None = typer.Option(
        None, "--trigger", help="manual, plan, gatekeeper or api (default: gatekeeper under CI, else manual)."
    ),
    partial: bool = typer.Option(False, "--partial", help="Keep the files that parse when others fail."),
    no_fail: bool = typer.Option(False, "--no-fail", help="Exit 0 even when the run failed."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the run as `runs show --json` does."),
) -> None:
    """Ingest test reports (JUnit, CTRF, TRX, NUnit, xUnit, TAP, go test, Cucumber, mocha, jest; gzip ok).

    Give --pipeline (a new run) or --run (an open run); one of them is required.
    All files go into one new run, which is completed and summarised (exit code 1 when it failed),
    or into the open run named by --run, which stays open for `testledger runs finish`.
    Files found in a folder that are not test reports are skipped with a note; a file named
    explicitly must be a report. A file that cannot be parsed stores nothing (with --partial, only
    that file is left out).
    Ingesting the same file twice into one run does not duplicate its results.
    """
    from testledger.cli.render import printable

    if not run_key and not pipeline:
        from testledger.errors import Invalid

        raise Invalid("--pipeline is required when no --run is given (e.g. --pipeline unit-tests)")
    settings = ctx.settings()
    ws = ctx.run_workspace(workspace, run_key) if run_key else ctx.resolve_workspace(workspace)
    skipped: list[str] = []
    paths = _report_paths(reports, skipped=skipped, max_bytes=settings.max_report_bytes)
    for note in skipped:
        sys.stderr.write(f"note: skipped {printable(note)}\n")
    server = ctx.remote()
    with contextlib.ExitStack() as stack:
        early_parse = None
        if server is None and 0 <= settings.parse_process_min_bytes <= sum(path.stat().st_size for path in paths):
            # Large enough to be parsed in a second process: it starts now and parses the reports while
            # this one imports the services, opens the store and creates the run (half a second of a
            # 100k-case ingest).
            from testledger.ingest.parse_process import start_early

            early_parse = start_early(paths, max_bytes=settings.max_report_bytes)
            if early_parse is not None:  # ended here if the ingest does not take it (an error, no new report)
                stack.callback(early_parse.close)
        from testledger.schemas import IngestOptions
        from testledger.services.ingest import ingest_files
        from testledger.services.runs import get_execution

        defaults = ctx.ci_defaults()
        options = IngestOptions(
            actor=ctx.actor(), pipeline_key=pipeline, environment=ctx.environment(env),
            allowed_environments=tuple(settings.environments),
            trigger=trigger or ctx.default_trigger(), revision=revision or defaults["revision"],
            branch=branch or defaults["branch"], build_url=build_url or defaults["build_url"],
            labels=ctx.parse_pairs(label, flag="--label") or None, run_key=run_key, partial=partial,
            max_report_bytes=settings.max_report_bytes,
            # This command is a short-lived process of its own: it may fork a parser and pause the collector.
            parse_process_min_bytes=None if settings.parse_process_min_bytes < 0 else settings.parse_process_min_bytes,
        )
        # The summary names at most 20 failing cases: no model for each of 100k passed results.
        statuses, case_limit = (None, None) if as_json else (("failed", "error"), SUMMARY_FAILURES + 1)
        if server is not None:  # uploaded, gzip-compressed as it streams; the server parses and stores
            with _partial_hint(len(paths) > 1 and not partial):
                outcome = server.ingest_files(workspace=ws, sources=paths, options=options)
            execution = server.get_execution(workspace=ws, key=outcome.run_key, statuses=statuses,
                                             case_limit=case_limit)
        else:
            # On a Core connection: an ingest imports no ORM (issue 10).
            with ctx.store().write_connection() as db, _collector_paused(), \
                    _partial_hint(len(paths) > 1 and not partial):
                outcome = ingest_files(db, workspace=ws, sources=paths, options=options, early_parse=early_parse)
                execution = get_execution(db, workspace=ws, key=outcome.run_key, statuses=statuses,
                                          case_limit=case_limit)
    for failed in outcome.failed_files:
        sys.stderr.write(f"warning: skipped {printable(failed.error)}\n")
    if as_json:
        ctx.print_json(execution)
    else:
        _summary(outcome, execution)
    from testledger.cli.runs import exit_code

    code = 0 if no_fail or execution.status in ("RUNNING", "PENDING") else exit_code(execution.status, execution.result)
    raise typer.Exit(code)


def _report_paths(items: list[str], *, skipped: list[str], max_bytes: int) -> list[Path]:
    """The files to ingest: as named, and those found in folders that are test reports (the others
    are skipped with a note, so a `notes.txt` beside the reports does not stop the ingest)."""
    from testledger.ingest.sources import expand_sources

    paths: dict[Path, None] = {}
    for item in items:
        found = expand_sources([item], skipped=skipped)
        if Path(item).is_dir():
            found = [path for path in found if _is_report(path, skipped=skipped, max_bytes=max_bytes)]
            if not found:
                from testledger.errors import NotFound

                raise NotFound(f"no test reports in folder '{item}'")
        paths.update(dict.fromkeys(found))
    return list(paths)


def _is_report(path: Path, *, skipped: list[str], max_bytes: int) -> bool:
    from testledger.errors import DomainError
    from testledger.ingest.detect import HEAD_SIZE, detect_format
    from testledger.ingest.model import ReportParseError
    from testledger.ingest.sources import open_report, report_name

    try:
        with open_report(path, max_bytes=max_bytes) as stream:
            head = stream.read(HEAD_SIZE)
        if not head.strip():
            return True  # an empty report is a broken one (a crashed job): the ingest says so
        detect_format(head, name=path.name)
    except ReportParseError:
        skipped.append(f"{report_name(path)}: not a test report")
        return False
    except DomainError:
        return True  # unreadable or too large: the ingest itself names the problem
    return True


@contextmanager
def _partial_hint(helps: bool) -> Iterator[None]:
    """A file that fails among several stops the ingest: say that --partial keeps the others."""
    from testledger.errors import Invalid

    try:
        yield
    except Invalid as exc:
        if not helps or "--partial" in str(exc):
            raise
        raise Invalid(f"{exc} (--partial keeps the files that parse)") from exc


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hundreds of thousands of short-lived, acyclic objects: collection passes only cost time here.
    A process-wide switch, so the command sets it, not the service (a server would not)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _summary(outcome: IngestOut, execution: ExecutionOut) -> None:
    """The run's result, its counts and its first failures. Into a pipe or a file (a CI log) as plain text,
    line by line, without importing Rich (~40 ms of the command's start); on a terminal styled by Rich."""
    from testledger.cli.render import console, count_of, markup_text, printable, rich_output, styled
    from testledger.textlimits import summary_line

    rich = rich_output()
    text = markup_text if rich else printable
    duplicates = outcome.duplicates
    read = len(outcome.files) - duplicates - len(outcome.failed_files)
    t = execution.totals
    status = execution.result or execution.status
    lines = [f"{text(execution.execution_id)}  {styled(status) if rich else printable(status)}"]
    line = (f"{count_of(read, 'file')}, {count_of(t.tests, 'test')}: {t.passed} passed, {t.failed} failed, "
            f"{count_of(t.errors, 'error')}, {t.skipped} skipped")
    if t.flaky:
        line += f", {t.flaky} flaky"
    if duplicates:
        line += f"; {count_of(duplicates, 'file')} already ingested, skipped"
    lines.append(line)
    failing = [c for c in execution.cases or [] if c.parent_index is None]
    # One bounded line per failure (a terminal wraps a 10 MB message in quadratic time), left whole for the
    # terminal to wrap: cut to the console width, a CI log would lose the message.
    cross = "[red]✗[/]" if rich else "✗"
    lines += [f"  {cross} {text(summary_line(case.case_key))}: {text(summary_line(case.error))}"
              for case in failing[:SUMMARY_FAILURES]]
    more = t.failed + t.errors - SUMMARY_FAILURES
    if more > 0:
        lines.append(f"  … and {more} more; `testledger runs show {text(execution.execution_id)}` lists all")
    if not rich:
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        return
    out = console()
    for line in lines:
        out.print(line, soft_wrap=True)


def export(
    key: str = typer.Argument(..., help="Run key."),
    format: str = typer.Option("junit", "--format", help="junit or ctrf."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    workspace: str | None = ctx.workspace_option(),
) -> None:
    """Write a run's results as a JUnit XML or CTRF JSON report (the report is the output: no --json)."""
    from testledger.errors import Invalid, NotFound
    from testledger.services.export import export_run

    ws = ctx.run_workspace(workspace, key)
    if output is None:
        ctx.read(export_run, workspace=ws, key=key, format=format, out=sys.stdout.buffer)
        sys.stdout.flush()
        return
    if not output.parent.is_dir():
        raise NotFound(f"folder '{output.parent}' does not exist: create it, or name another file with -o")
    tmp = output.with_name(output.name + ".partial")
    try:
        with tmp.open("wb") as fh:
            ctx.read(export_run, workspace=ws, key=key, format=format, out=fh)
        tmp.replace(output)
    except OSError as exc:
        raise Invalid(f"cannot write '{output}': {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
