"""`testledger pipelines`: validate, apply, list and show pipeline files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from testledger.cli import context as ctx

if TYPE_CHECKING:
    from testledger.pipelinefile import PipelineFile
    from testledger.remote.client import Remote

app = typer.Typer(help="Validate, apply, list, show and delete pipelines.", no_args_is_help=True)


def read_pipeline_file(path: Path) -> PipelineFile:
    """Read and validate a pipeline file; every problem is reported as `file:line:col: message`."""
    from testledger.errors import Invalid, NotFound
    from testledger.pipelinefile import PipelineFileError, parse_pipeline
    from testledger.pipelineyaml import read_pipeline_text

    try:
        text = read_pipeline_text(path)
    except FileNotFoundError:
        raise NotFound(f"pipeline file '{path}' not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read pipeline file '{path}': {exc}") from None
    try:
        return parse_pipeline(text, filename=str(path), environments=ctx.settings().environments)
    except PipelineFileError as exc:
        count = len(exc.problems)
        from testledger.cli.render import count_of

        sys.stderr.write(f"{exc}\n{path}: {count_of(count, 'problem')}\n")
        raise typer.Exit(ctx.EXIT_INVALID) from None


@app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="Pipeline file (YAML or JSON)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the validated pipeline as JSON (problems still go to stderr)."),
) -> None:
    """Check a pipeline file and report every problem with its line and column (with TESTLEDGER_URL set,
    the server checks it too, against its own environments)."""
    server = ctx.remote()
    if server is not None:
        _validate_on(server, file)
    document = read_pipeline_file(file)
    spec = document.spec
    if as_json:
        ctx.print_json(spec.stored())
        return
    from testledger.cli.render import count_of

    typer.echo(f"{file}: ok (pipeline '{spec.key}', {count_of(len(spec.cases), 'case')})")


def _validate_on(server: Remote, file: Path) -> None:
    """The server's verdict on the file: its problems printed as the local check prints them."""
    from testledger.errors import Invalid, NotFound

    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"pipeline file '{file}' not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read pipeline file '{file}': {exc}") from None
    verdict = server.validate_pipeline(text=text)
    problems = verdict.get("problems") or []
    if verdict.get("valid") and not problems:
        return
    from testledger.cli.render import count_of

    for problem in problems:
        sys.stderr.write(f"{file}:{problem['line']}:{problem['column']}: {problem['message']}\n")
    sys.stderr.write(f"{file}: {count_of(len(problems), 'problem')}\n")
    raise typer.Exit(ctx.EXIT_INVALID)


@app.command("apply")
def apply(
    file: Path = typer.Argument(..., help="Pipeline file (YAML or JSON)."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the pipeline as JSON."),
) -> None:
    """Store a pipeline file as a new version (an unchanged file creates none)."""
    from testledger.services.pipelines import apply_pipeline

    document = read_pipeline_file(file)
    applied = ctx.write(
        apply_pipeline, workspace=workspace or document.spec.workspace or ctx.resolve_workspace(None),
        document=document, actor=ctx.actor(), directory=file.resolve().parent, with_cases=as_json,
    )
    if as_json:
        ctx.print_json(applied)
        return
    p = applied.pipeline
    what = f"version {p.version}" if applied.created else f"unchanged, still version {p.version}"
    from testledger.cli.render import count_of

    # The document's cases are the version's (the one applied, or an equal one).
    typer.echo(f"pipeline {p.workspace}/{p.key}: {what} ({count_of(len(document.spec.cases), 'case')})")


@app.command("list")
def list_pipelines(
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """List the workspace's pipelines; those only known from ingested reports are marked "reports only"."""
    from testledger.services.pipelines import list_pipelines as list_all

    items = ctx.read(list_all, workspace=ctx.resolve_workspace(workspace))
    if as_json:
        ctx.print_json([item.model_dump(mode="json") for item in items])
        return
    from rich.markup import escape
    from rich.table import Table

    from testledger.cli.render import console

    table = Table(box=None, header_style="bold")
    for column in ("Pipeline", "Name", "Version", "Env", "Parallel", "Updated"):
        table.add_column(column)
    for p in items:
        table.add_row(escape(p.key), escape(p.name), str(p.version) if p.version else "reports only",
                      escape(p.environment or "-"),
                      str(p.parallelism), p.updated_at.strftime("%Y-%m-%d %H:%M:%S"))
    console().print(table if items else "No pipelines found.")


@app.command("show")
def show(
    key: str = typer.Argument(..., help="Pipeline key."),
    workspace: str | None = ctx.workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the pipeline as JSON."),
) -> None:
    """Show a pipeline's current version and its cases."""
    from testledger.services.pipelines import get_pipeline

    pipeline = ctx.read(get_pipeline, workspace=ctx.resolve_workspace(workspace), key=key)
    if as_json:
        ctx.print_json(pipeline)
        return
    if not pipeline.version:
        typer.echo(f"Pipeline: {pipeline.key}: reports only (known from `ingest`, no cases to run; "
                   "`testledger pipelines apply FILE` adds them)")
        return
    typer.echo(f"Pipeline: {pipeline.key} ({pipeline.name}), version {pipeline.version}")
    typer.echo(f"Environment: {pipeline.environment or '-'}  parallelism: {pipeline.parallelism}  "
               f"retries: {pipeline.retries}  fail_fast: {str(pipeline.fail_fast).lower()}")
    for name, value in (pipeline.parameters or {}).items():
        typer.echo(f"Parameter: {name} = {value}")
    for case in pipeline.cases or []:
        typer.echo(f"  {case.index}: {case.key} [{case.kind}] {case.name}")


@app.command("delete")
def delete(
    key: str = typer.Argument(..., help="Pipeline key."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    workspace: str | None = ctx.workspace_option(),
) -> None:
    """Delete a pipeline and its versions; refused while runs refer to it (delete them first).

    Asks first on a terminal; elsewhere it refuses without --yes.
    """
    from testledger.services.pipelines import delete_pipeline

    ctx.confirm(f"Delete pipeline '{key}' and all its versions?", yes=yes)
    ctx.write(delete_pipeline, workspace=ctx.resolve_workspace(workspace), key=key)
    typer.echo(f"deleted pipeline {key}")
