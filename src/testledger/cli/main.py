"""The `testledger` application: command groups, global options, and one place mapping errors to exits."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import typer

from testledger import __version__
from testledger.cli.context import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_STORE

HELP = """\
testledger: run test pipelines, ingest reports from any CI, record and analyse every run.

The store is SQLite under $TESTLEDGER_HOME unless TESTLEDGER_DATABASE_URL names PostgreSQL.
With TESTLEDGER_URL and TESTLEDGER_TOKEN set, the commands ask that testledger server instead,
with the same output (commands that only make sense on a local store say so).

Exit codes: 0 ok (run passed); 1 the run failed; 2 the run ended in error or timeout, or a
usage error; 3 invalid input or a conflict (nothing changed); 4 not found; 5 store unavailable.
"""


def _group(module: str) -> Callable[[typer.Typer, str], None]:
    """A command group: the `app` of `testledger.cli.<module>`."""
    return lambda app, name: app.add_typer(importlib.import_module(f"testledger.cli.{module}").app, name=name)


def _command(module: str, function: str | None = None) -> Callable[[typer.Typer, str], None]:
    """A command: a function of `testledger.cli.<module>` (named as the command unless given)."""
    return lambda app, name: app.command(name)(
        getattr(importlib.import_module(f"testledger.cli.{module}"), function or name))


def _analytics(app: typer.Typer, _name: str) -> None:
    from testledger.cli import analytics

    analytics.register(app)


#: Every command and how it joins the app, in the order `--help` lists them. A command's module is
#: imported only when that command runs (or for `--help`): `runs list` does not build the other
#: ~30 commands' options nor import their modules (issue 9).
COMMANDS: dict[str, Callable[[typer.Typer, str], None]] = {
    "runs": _group("runs"), "db": _group("db"), "pipelines": _group("pipelines"),
    "run": _command("execute"), "rerun": _command("execute"), "cancel": _command("execute"),
    "refresh": _command("execute"), "logs": _command("execute"),
    "ingest": _command("ingest"), "export": _command("ingest"),
    "serve": _command("serve"), "tokens": _group("tokens"),
    **dict.fromkeys(("health", "flaky", "slow", "clusters", "compare", "tests", "quarantine"), _analytics),
    "analytics": _group("analytics"),
    "mcp": _command("mcp"),
}


def build_app(argv: Sequence[str] = ()) -> typer.Typer:
    """The application with the command `argv` names, or with every command when it names none."""
    app = typer.Typer(
        help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main)
    # The root options are flags, so the first other word is the command; shell completion sees all.
    named = next((arg for arg in argv if not arg.startswith("-")), None)
    wanted = [named] if named in COMMANDS and "_TESTLEDGER_COMPLETE" not in os.environ else list(COMMANDS)
    added: set[Callable[[typer.Typer, str], None]] = set()
    for name in wanted:
        join = COMMANDS[name]
        if join is _analytics and join in added:
            continue
        added.add(join)
        join(app, name)
    return app


def _version(value: bool) -> None:
    if value:
        typer.echo(f"testledger {__version__}")
        raise typer.Exit()


def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True,
        help="Log what happens to stderr: -v for info, -vv for debug (default: TESTLEDGER_LOG_LEVEL, else warning).",
    ),
) -> None:
    """testledger command line."""
    configure_logging(verbose)


def configure_logging(verbose: int) -> None:
    """Send the library's log records to stderr: the only place logging is configured."""
    import logging

    from testledger.settings import get_settings

    levels: dict[int, int | str] = {0: get_settings().log_level, 1: logging.INFO}
    level = levels.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("testledger")
    root.handlers = [handler]
    root.setLevel(level)
    root.propagate = False


def console() -> NoReturn:
    """The `testledger` command (console script and `python -m testledger`): `run`, then a quick exit."""
    try:
        run()
    except SystemExit as exc:
        _leave(exc.code)
    _leave(0)


def _leave(code: object) -> NoReturn:
    """End the process as the interpreter's exit would, without its teardown: freeing every imported
    module's objects one by one (SQLAlchemy, pydantic, rich) takes 0.1-0.2 s a command need not wait
    for. What reaches outside the process still happens: the stores are closed, atexit handlers run
    (logging is flushed, temporary files removed, child processes reaped) and stdout is flushed.
    While a thread that is not a daemon still runs, or a profiler or tracer (cProfile, coverage)
    watches and writes its report at the very end, the ordinary exit happens instead."""
    import atexit
    import threading

    status = code if isinstance(code, int) else 0 if code is None else 1
    if not isinstance(code, int) and code is not None:
        sys.stderr.write(f"{code}\n")
    if sys.getprofile() is not None or sys.gettrace() is not None or any(
            t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(status)
    engine = sys.modules.get("testledger.db.engine")
    if engine is not None:
        engine.close_stores()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # the reader went away (`| head`), or stdout was closed
        status = status or 1
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(status)


def _escape_what_cannot_be_shown() -> None:
    """Output that the terminal's encoding cannot show (a `✗`, a test name in Cyrillic, on a stream set to
    ASCII or Latin-1) is written escaped, `\\u2717`, instead of ending the command with a traceback."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # a closed stream, or one already written to
                reconfigure(errors="backslashreplace")


def run() -> None:
    """The command line as a function: a user error is one clear line on stderr and a documented exit
    code, raised as `SystemExit` (so a test can call it in process)."""
    from testledger.errors import DomainError, NotFound, Unavailable

    _interrupt_on_sigterm()
    _escape_what_cannot_be_shown()
    try:
        try:
            build_app(sys.argv[1:])(standalone_mode=True)
        except Exception as exc:
            if _after_interrupt(exc):
                # Cleanup on the way out of an interrupt failed (e.g. a rollback sent while a PostgreSQL
                # COPY was still open: "another command is already in progress"): the interrupt is the news.
                raise KeyboardInterrupt from exc
            raise
    except NotFound as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    except Unavailable as exc:
        _fail(str(exc), EXIT_STORE)
    except DomainError as exc:
        _fail(str(exc), EXIT_INVALID)
    except KeyboardInterrupt:
        if not _sigterm_said:  # the SIGTERM handler has already said so
            _fail("interrupted", 130)
        sys.exit(130)
    except SystemExit as exc:
        # Typer ends a Ctrl-C that reached it with a silent exit 130: say what happened, as for SIGTERM.
        if exc.code == 130 and not _sigterm_said and _after_interrupt(exc):
            _fail("interrupted", 130)
        raise


def _after_interrupt(exc: BaseException) -> bool:
    """Whether `exc` was raised while an interrupt (Ctrl-C, SIGTERM) was being handled."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__context__ or cause.__cause__
    return False


_sigterm_said = False


def _interrupt_on_sigterm() -> None:
    """SIGTERM stops a command as Ctrl-C does: open transactions roll back and child processes are
    ended on the way out, instead of the process vanishing mid-write."""
    import signal

    def interrupt(_signum: int, _frame: object) -> None:
        global _sigterm_said
        sys.stderr.write("error: interrupted\n")  # typer turns the interrupt into a silent exit 130
        _sigterm_said = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _fail(message: str, code: int) -> None:
    from testledger.cli.render import printable  # messages quote names from reports and callers

    sys.stderr.write(f"error: {printable(message)}\n")
    sys.exit(code)

