"""All configuration in one place: `TESTLEDGER_*` environment variables, each with a default.

`Settings` reads its fields from the environment itself (names case-insensitive, list values as
JSON, values given in code win) and checks each: a bad value is one line naming the variable and
what it takes (exit 3), never a traceback. It is a plain dataclass: building a pydantic model for it
cost ~25 ms of every command's start (issue 9), pydantic-settings another 25-40 ms.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ENV_PREFIX = "TESTLEDGER_"


def default_home() -> Path:
    """The platform's usual place for an application's data (XDG on Linux, Library on macOS)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "testledger"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "testledger"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "testledger"


class UnnamedWorkspace(str):
    """The workspace key used when nobody named one (no `-w`, TESTLEDGER_WORKSPACE unset). A client of a
    server sends none for it, so the server answers for its token's own workspace; a key someone
    named, even the same one, is sent."""

    __slots__ = ()


class Secret:
    """A value that never shows itself: its repr and str are stars; `get_secret_value()` reads it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def setting(
    *, description: str, default: Any = None, default_factory: Callable[[], Any] | None = None,
    ge: float | None = None, gt: float | None = None, secret: bool = False,
) -> Any:
    """A setting: its default, the bounds a value must keep and the description the docs show."""
    meta = {"description": description, "ge": ge, "gt": gt}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True, init=False)
class Settings:
    """testledger's settings. Every field reads `TESTLEDGER_<NAME>` from the environment."""

    home: Path = setting(
        default_factory=default_home,
        description="Data directory: the SQLite store, logs and attachments live here.",
    )
    database_url: str | None = setting(
        default=None,
        description="SQLAlchemy URL of the store, e.g. postgresql+psycopg://host/db. "
        "Unset: SQLite at $TESTLEDGER_HOME/testledger.db.",
    )
    workspace: str = setting(
        default=UnnamedWorkspace("WKS"), description="Workspace key used when a command names none.",
    )
    environments: list[str] = setting(
        default=["dev", "staging", "prod", "local", "ci"],
        description="Allowed environment names (JSON list). `production` is accepted as `prod`.",
    )
    max_report_bytes: int = setting(
        default=512 * 1024 * 1024,
        description="Largest report (after gunzip) that ingest accepts, in bytes.",
    )
    max_message_bytes: int = setting(
        default=64 * 1024, ge=256,
        description="Most bytes of a result's message (and of each attempt's) that are stored; the rest is cut "
        "and the cut marked, e.g. '… [truncated 9,437,184 bytes]'.",
    )
    max_output_bytes: int = setting(
        default=1024 * 1024, ge=256,
        description="Most bytes of a result's stack trace, stdout and stderr (each) that are stored; the rest "
        "is cut and the cut marked.",
    )
    parse_process_min_bytes: int = setting(
        default=4 * 1024 * 1024,
        description="Reports at least this large (on disk) are parsed in a second process while the first "
        "writes; -1 turns it off.",
    )
    sqlite_busy_timeout_ms: int = setting(
        default=30_000, description="How long a SQLite writer waits for another writer's lock."
    )
    heartbeat_seconds: float = setting(
        default=5.0, description="How often an executor records that it is alive."
    )
    stale_after_seconds: float = setting(
        default=60.0,
        description="A running run whose executor has not beaten for this long is stuck and may be repaired.",
    )

    api_max_body_bytes: int = setting(
        default=1024 * 1024, description="Largest request body the API accepts, except uploads to /ingest."
    )
    api_max_upload_bytes: int = setting(
        default=512 * 1024 * 1024, description="Largest upload (all files of one request) /api/v1/ingest accepts."
    )
    log_sign_ttl_seconds: int = setting(
        default=300, description="How long a signed log URL stays valid, in seconds."
    )
    signing_key: str | None = setting(
        default=None, secret=True,
        description="Key that signs log URLs. Unset: a random key in $TESTLEDGER_HOME/signing.key (mode 0600).",
    )

    url: str | None = setting(
        default=None,
        description="A testledger server (e.g. https://ledger.example.com): with TESTLEDGER_TOKEN, the CLI, the "
        "pytest plugin and `testledger mcp` use it instead of a local store.",
    )
    token: Secret | None = setting(
        default=None, description="The API token (`testledger tokens create`) sent to TESTLEDGER_URL; never logged.",
    )
    remote_timeout_seconds: float = setting(
        default=60.0, gt=0, description="How long a call to TESTLEDGER_URL may take before it fails.",
    )

    log_level: str = setting(
        default="WARNING",
        description="Level of the log written to stderr: DEBUG, INFO, WARNING or ERROR (`-v` raises it to INFO, "
        "`-vv` to DEBUG).",
    )


    def __init__(self, **values: Any) -> None:
        given = {**_from_environment(), **values}
        for spec in dataclasses.fields(self):
            if spec.name in given and given[spec.name] is not None:
                value = _checked(spec, given[spec.name])
            elif spec.name in given or spec.default_factory is dataclasses.MISSING:
                value = spec.default
            else:
                value = spec.default_factory()
            object.__setattr__(self, spec.name, value)

    def replace(self, **changes: Any) -> Settings:
        """These settings with `changes` (checked like any other value)."""
        return Settings(**{**{spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}, **changes})

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'testledger.db'}"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def attachments_dir(self) -> Path:
        return self.home / "attachments"



def _checked(spec: dataclasses.Field[Any], raw: Any) -> Any:
    """`raw` as the field's type, within its bounds; `Invalid` names the variable and what it takes."""
    from testledger.errors import Invalid

    name = f"{ENV_PREFIX}{spec.name.upper()}"
    kind = str(spec.type).removesuffix(" | None")
    try:
        value = _CONVERT[kind](raw)
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be {_WHAT[kind]} (got {raw!r})") from None
    bound_ge, bound_gt = spec.metadata.get("ge"), spec.metadata.get("gt")
    if bound_ge is not None and value < bound_ge:
        raise Invalid(f"{name} must be at least {bound_ge:g} (got {raw!r})")
    if bound_gt is not None and value <= bound_gt:
        raise Invalid(f"{name} must be more than {bound_gt:g} (got {raw!r})")
    if spec.name == "log_level":
        value = str(value).upper()
        if value not in _LEVELS:
            raise Invalid(f"{name} must be one of DEBUG, INFO, WARNING or ERROR (got {raw!r})")
    return value


def _string_list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ValueError("not a list of strings")
    return list(raw)


def _number(kind: type[int] | type[float]) -> Callable[[Any], Any]:
    def convert(raw: Any) -> Any:
        if isinstance(raw, bool) or (kind is int and isinstance(raw, float) and not raw.is_integer()):
            raise ValueError("not a number")
        return kind(raw.strip() if isinstance(raw, str) else raw)
    return convert


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "Path": lambda raw: Path(raw).expanduser(), "str": str, "int": _number(int), "float": _number(float),
    "list[str]": _string_list, "Secret": lambda raw: raw if isinstance(raw, Secret) else Secret(str(raw)),
}
_WHAT = {
    "Path": "a path", "str": "text", "int": "a whole number", "float": "a number",
    "list[str]": "JSON, e.g. '[\"dev\", \"ci\"]'", "Secret": "text",
}


def _from_environment() -> dict[str, Any]:
    """`TESTLEDGER_<FIELD>` variables, whatever their case, as the strings they are."""
    found = {name.lower(): value for name, value in os.environ.items() if name.upper().startswith(ENV_PREFIX)}
    names = [spec.name for spec in dataclasses.fields(Settings)]
    return {name: found[(ENV_PREFIX + name).lower()] for name in names if (ENV_PREFIX + name).lower() in found}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
