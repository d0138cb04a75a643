"""All configuration in one place: `TESTLEDGER_*` environment variables, each with a default."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """The platform's usual place for an application's data (XDG on Linux, Library on macOS)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "testledger"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "testledger"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "testledger"


class Settings(BaseSettings):
    """testledger's settings. Every field reads `TESTLEDGER_<NAME>` from the environment."""

    model_config = SettingsConfigDict(env_prefix="TESTLEDGER_", extra="ignore")

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
