"""What every command shares: exit codes, the store, the acting user, CI defaults, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import typer

from testledger.lifecycle import ERROR, FAILED, PASSED, SKIPPED

# Who acts and what the CI job says live outside the CLI, so every adapter records the same.
from testledger.provenance import actor as actor
from testledger.provenance import ci_defaults as ci_defaults
from testledger.provenance import default_trigger as default_trigger

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from testledger.db.engine import Store
    from testledger.remote.client import Remote
    from testledger.remote.config import RemoteConfig
    from testledger.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")

# Documented exit codes (README, `testledger --help`).
EXIT_OK = 0
EXIT_FAILED = 1  # the run failed: a test failed
EXIT_ERROR = 2  # the run ended in error or timeout (also Click's code for a usage error)
EXIT_INVALID = 3  # bad input or a conflict with stored state; nothing was changed
EXIT_NOT_FOUND = 4  # the named run, pipeline or file does not exist
EXIT_STORE = 5  # the store cannot be opened or is at the wrong schema revision

RESULT_EXIT = {PASSED: EXIT_OK, SKIPPED: EXIT_OK, FAILED: EXIT_FAILED, ERROR: EXIT_ERROR}


def settings() -> Settings:
    from testledger.settings import get_settings

    return get_settings()


def store() -> Store:
    """The local store; a command that needs one says so in one line when a server is configured."""
    from testledger.cli import startup
    from testledger.db.engine import open_store

    local_only()
    opened = open_store()
    startup.resume()  # the command's work begins: see `cli/startup.py`
    return opened


def remote() -> Remote | None:
    """The server TESTLEDGER_URL and TESTLEDGER_TOKEN name (commands then ask it instead of a local
    store), or None. Only one of the two set is a usage error naming the other."""
    from testledger.remote.config import HalfConfigured, remote_config

    try:
        config = remote_config(settings())
    except HalfConfigured as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(EXIT_ERROR) from None
    if config is None:
        return None
    return _connected(config)


@lru_cache(maxsize=1)
def _connected(config: RemoteConfig) -> Remote:
    """One client per server and token for the whole command: its connection is reused between calls."""
    from testledger.cli import startup
    from testledger.remote.client import Remote

    client = Remote(config)
    startup.resume()  # the command's work begins: see `cli/startup.py`
    return client


def local_only() -> None:
    """Refuse, in one line, to run a command that only makes sense on a local store while a server is set."""
    server = remote()
    if server is None:
        return
    command = f"`{_command_path()}`" if _command_path() else "this command"
    from testledger.errors import Invalid

    raise Invalid(f"{command} works on a local store only, and TESTLEDGER_URL names a server ({server.url}): "
                  "run it there, or unset TESTLEDGER_URL and TESTLEDGER_TOKEN")


def _command_path() -> str | None:
    """The command being run, as typed (`testledger runs delete`)."""
    try:  # Typer carries its own Click; its context knows the command's path
        from typer._click.globals import get_current_context
    except ImportError:
        return None
    context = get_current_context(silent=True)
    return context.command_path if context is not None else None


def read(fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(db, ...)` in a read of the local store, or the same call answered by the configured server."""
    from testledger.remote.calls import ServiceCalls

    return ServiceCalls(store, remote()).read(fn, *args, **kwargs)


def read_rows(fn: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`read` for the list and show services, which read through Core on a bare connection locally."""
    from testledger.remote.calls import ServiceCalls

    return ServiceCalls(store, remote()).read_rows(fn, *args, **kwargs)


def write(fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(db, ...)` in one write transaction of the local store, or answered by the configured server."""
    from testledger.remote.calls import ServiceCalls

    return ServiceCalls(store, remote()).write(fn, *args, **kwargs)


def parse_pairs(values: list[str] | None, *, flag: str) -> dict[str, str]:
    """`k=v` options into a dict, with a clear error for a malformed one."""
    from testledger.errors import Invalid

    pairs: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Invalid(f"{flag} expects KEY=VALUE, got '{item}'")
        pairs[key.strip()] = value
    return pairs


def print_json(data: BaseModel | list[Any] | dict[str, Any]) -> None:
    from pydantic import BaseModel

    if isinstance(data, BaseModel):
        sys.stdout.write(data.model_dump_json(indent=2) + "\n")
        return
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def workspace_option() -> Any:
    return typer.Option(
        None, "--workspace", "-w", envvar="TESTLEDGER_WORKSPACE", help="Workspace key (default: WKS)."
    )


def resolve_workspace(value: str | None) -> str:
    return value or settings().workspace


def run_workspace(value: str | None, key: str) -> str:
    """The workspace to look a run up in: the one given, else the one its key names (`BAR-1202-1`)."""
    from testledger.keys import RUN_KEY

    match = RUN_KEY.match(key)
    return value or (match["workspace"] if match else settings().workspace)


#: One rule for every command that starts a run (and the pytest plugin): `provenance.default_environment`.
DEFAULT_ENVIRONMENT_HELP = "ci inside a CI job, else local"


def environment_option() -> Any:
    return typer.Option(
        None, "--env", "-e", help=f"Environment: one of TESTLEDGER_ENVIRONMENTS (default: {DEFAULT_ENVIRONMENT_HELP}).",
    )


def environment(value: str | None) -> str:
    """The environment a new run records: the one given (validated), else `ci` under CI, else `local`."""
    from testledger.lifecycle import normalise_environment
    from testledger.provenance import default_environment

    return normalise_environment(value or default_environment(), list(settings().environments))


def confirm(question: str, *, yes: bool) -> None:
    """Go on with `--yes`, or when a person at a terminal says so; anywhere else, refuse."""
    from testledger.errors import Invalid

    if yes:
        return
    if not sys.stdin.isatty():
        raise Invalid("not deleting without confirmation: pass --yes")
    if not typer.confirm(question, default=False):
        raise typer.Exit(EXIT_INVALID)
