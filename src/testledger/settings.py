"""All configuration in one place: `TESTLEDGER_*` environment variables, each with a default.

`Settings` is a pydantic model that reads its fields from the environment itself, as pydantic-settings
would (names case-insensitive, list values as JSON, given values win over the environment): importing
pydantic-settings cost ~25-40 ms of every command's start (issue 9) for this one class.
"""

from __future__ import annotations

import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ENV_PREFIX = "TESTLEDGER_"


def default_home() -> Path:
    """The platform's usual place for an application's data (XDG on Linux, Library on macOS)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "testledger"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "testledger"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "testledger"


class Settings(BaseModel):
    """testledger's settings. Every field reads `TESTLEDGER_<NAME>` from the environment."""

    model_config = ConfigDict(extra="ignore")

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**_from_environment(), **values})

    home: Path = Field(
        default_factory=default_home,
        description="Data directory: the SQLite store, logs and attachments live here.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store, e.g. postgresql+psycopg://host/db. "
        "Unset: SQLite at $TESTLEDGER_HOME/testledger.db.",
    )
    workspace: str = Field(default="WKS", description="Workspace key used when a command names none.")
    environments: list[str] = Field(
        default=["dev", "staging", "prod", "local", "ci"],
        description="Allowed environment names (JSON list). `production` is accepted as `prod`.",
    )
    max_report_bytes: int = Field(
        default=512 * 1024 * 1024,
        description="Largest report (after gunzip) that ingest accepts, in bytes.",
    )
    max_message_bytes: int = Field(
        default=64 * 1024, ge=256,
        description="Most bytes of a result's message (and of each attempt's) that are stored; the rest is cut "
        "and the cut marked, e.g. '… [truncated 9,437,184 bytes]'.",
    )
    max_output_bytes: int = Field(
        default=1024 * 1024, ge=256,
        description="Most bytes of a result's stack trace, stdout and stderr (each) that are stored; the rest "
        "is cut and the cut marked.",
    )
    parse_process_min_bytes: int = Field(
        default=4 * 1024 * 1024,
        description="Reports at least this large (on disk) are parsed in a second process while the first "
        "writes; -1 turns it off.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, description="How long a SQLite writer waits for another writer's lock."
    )
    heartbeat_seconds: float = Field(
        default=5.0, description="How often an executor records that it is alive."
    )
    stale_after_seconds: float = Field(
        default=60.0,
        description="A running run whose executor has not beaten for this long is stuck and may be repaired.",
    )

    api_max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest request body the API accepts, except uploads to /ingest."
    )
    api_max_upload_bytes: int = Field(
        default=512 * 1024 * 1024, description="Largest upload (all files of one request) /api/v1/ingest accepts."
    )
    log_sign_ttl_seconds: int = Field(
        default=300, description="How long a signed log URL stays valid, in seconds."
    )
    signing_key: str | None = Field(
        default=None,
        description="Key that signs log URLs. Unset: a random key in $TESTLEDGER_HOME/signing.key (mode 0600).",
    )

    url: str | None = Field(
        default=None,
        description="A testledger server (e.g. https://ledger.example.com): with TESTLEDGER_TOKEN, the CLI, the "
        "pytest plugin and `testledger mcp` use it instead of a local store.",
    )
    token: SecretStr | None = Field(
        default=None, description="The API token (`testledger tokens create`) sent to TESTLEDGER_URL; never logged.",
    )
    remote_timeout_seconds: float = Field(
        default=60.0, gt=0, description="How long a call to TESTLEDGER_URL may take before it fails.",
    )

    log_level: str = Field(
        default="WARNING",
        description="Level of the log written to stderr: DEBUG, INFO, WARNING or ERROR (`-v` raises it to INFO, "
        "`-vv` to DEBUG).",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"unknown log level '{value}' (expected DEBUG, INFO, WARNING or ERROR)")
        return value.upper()

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


def _from_environment() -> dict[str, Any]:
    """`TESTLEDGER_<FIELD>` variables, whatever their case; a list or dict field's value is JSON."""
    from testledger.errors import Invalid

    found = {name.lower(): value for name, value in os.environ.items() if name.upper().startswith(ENV_PREFIX)}
    values: dict[str, Any] = {}
    for field, info in Settings.model_fields.items():
        raw = found.get((ENV_PREFIX + field).lower())
        if raw is None:
            continue
        if get_origin(info.annotation) in (list, dict):
            try:
                values[field] = json.loads(raw)
            except ValueError:
                raise Invalid(f"{ENV_PREFIX}{field.upper()} must be JSON, e.g. '[\"dev\", \"ci\"]' "
                              f"(got {raw!r})") from None
        else:
            values[field] = raw
    return values


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
