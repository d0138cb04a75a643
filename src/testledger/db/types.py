"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

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


def utcnow() -> datetime:
    return datetime.now(UTC)
