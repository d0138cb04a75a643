"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in, timezone-aware UTC datetimes out, on every backend.

    SQLite has no timezone type and hands back naive values; treating them as UTC here keeps
    every comparison and every `completed_at - started_at` correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC datetime is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_text(value: Any) -> str | None:
    """A JSON column's value as the text the drivers store (compact, UTF-8 kept)."""
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def __getattr__(name: str) -> Any:
    """`JSONType`: JSON everywhere, JSONB on PostgreSQL so later analytics can index into it.

    Built on first use because naming JSONB imports the whole PostgreSQL dialect (~30 ms): the read
    paths (`db.reads`) need `UTCDateTime` only, and a command on a SQLite store never needs JSONB.
    """
    if name == "JSONType":
        from sqlalchemy.dialects.postgresql import JSONB

        json_type = globals()["JSONType"] = JSON().with_variant(JSONB(), "postgresql")
        return json_type
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sqlite_datetime(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite dialect stores for a UTC datetime, so the driver-level paths agree with it."""
    if value is None:
        return None
    if value.tzinfo is not UTC and value.tzinfo is not None:
        value = value.astimezone(UTC)
    # isoformat is twice as fast as strftime on this hot path and gives the same text.
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def utcnow() -> datetime:
    return datetime.now(UTC)
