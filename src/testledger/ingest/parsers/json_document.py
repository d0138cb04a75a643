"""Loading a whole JSON report safely, and typed access to its loosely shaped values."""

from __future__ import annotations

import json
from typing import IO, Any

from testledger.ingest.model import ReportParseError
from testledger.ingest.parsers.values import clean

#: JSON reports are read whole; past this size they are refused rather than exhausting memory.
MAX_JSON_BYTES = 512 * 1024 * 1024


def load_json(stream: IO[bytes], *, name: str, what: str) -> Any:
    """Parse the whole stream as JSON, or raise ReportParseError naming the line."""
    data = _read_all(stream, MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ReportParseError(f"{what} larger than {MAX_JSON_BYTES // 2**20} MiB", file=name)
    if not data.strip():
        raise ReportParseError(f"empty document (expected {what})", file=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportParseError(f"not UTF-8 text (expected {what}): {exc.reason}", file=name) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportParseError(f"not valid JSON ({exc.msg}, column {exc.colno})", file=name, line=exc.lineno) from None
    except RecursionError:
        raise ReportParseError(f"{what} is nested too deeply", file=name) from None


def _read_all(stream: IO[bytes], limit: int) -> bytes:
    """Read to the end (or ``limit``): a single ``read(n)`` may legally return less."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(min(limit - size, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    """A string field NUL-free; numbers are rendered, anything else is ``None``."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def as_text(value: object) -> str | None:
    """Like :func:`as_str`, but a list of strings (CTRF stdout, rspec backtrace) is joined by lines."""
    if isinstance(value, list):
        lines = [line for line in (as_str(item) for item in value) if line is not None]
        return "\n".join(lines) if lines else None
    return as_str(value) or None


def expect_shape(ok: bool, *, name: str, what: str) -> None:
    """Refuse a JSON document whose top-level shape is not the one ``what`` has."""
    if not ok:
        raise ReportParseError(f"JSON is not {what}", file=name)
