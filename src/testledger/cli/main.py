"""The `testledger` application: command groups, global options, and one place mapping errors to exits."""

from __future__ import annotations

import sys

import typer

from testledger import __version__
from testledger.cli import db as db_commands
from testledger.cli import execute as execute_commands
from testledger.cli import ingest as ingest_commands
from testledger.cli import mcp as mcp_commands
from testledger.cli import pipelines as pipelines_commands
from testledger.cli import runs as runs_commands
from testledger.cli.context import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_STORE

HELP = """\
testledger: run test pipelines, ingest reports from any CI, record and analyse every run.

The store is SQLite under $TESTLEDGER_HOME unless TESTLEDGER_DATABASE_URL names PostgreSQL.

Exit codes: 0 ok (run passed); 1 the run failed; 2 the run ended in error or timeout, or a
usage error; 3 invalid input or a conflict (nothing changed); 4 not found; 5 store unavailable.
"""

app = typer.Typer(
    help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(runs_commands.app, name="runs")
app.add_typer(db_commands.app, name="db")
app.add_typer(pipelines_commands.app, name="pipelines")
app.command("run")(execute_commands.run)
app.command("cancel")(execute_commands.cancel)
app.command("refresh")(execute_commands.refresh)
app.command("logs")(execute_commands.logs)
app.command("ingest")(ingest_commands.ingest)
app.command("export")(ingest_commands.export)
app.command("mcp")(mcp_commands.mcp)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"testledger {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """testledger command line."""


def run() -> None:
    """Console entry point: a user error is one clear line on stderr and a documented exit code."""
    from testledger.errors import DomainError, NotFound, Unavailable

    try:
        app(standalone_mode=True)
    except NotFound as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    except Unavailable as exc:
        _fail(str(exc), EXIT_STORE)
    except DomainError as exc:
        _fail(str(exc), EXIT_INVALID)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # the last line of defence: database errors get one clear line too
        _fail_unexpected(exc)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)


def _fail_unexpected(exc: Exception) -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    if isinstance(exc, OperationalError):
        _fail(f"the store is unavailable: {str(exc.orig).strip().splitlines()[0]}", EXIT_STORE)
    if isinstance(exc, IntegrityError):
        # Two writers raced for the same new row (on PostgreSQL, e.g. two applies of one pipeline).
        _fail("another command changed the same data at the same time; nothing was stored: run it again",
              EXIT_INVALID)
    raise exc
