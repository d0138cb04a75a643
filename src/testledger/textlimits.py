"""Bounds on the text a result stores (message, error type, stack trace, output) and on a summary line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testledger.db.rows import NewResult

#: `error_type` is a VARCHAR(255) column: longer text is a DataError on PostgreSQL.
ERROR_TYPE_CHARS = 255
_OUTPUT_FIELDS = ("stack_trace", "stdout", "stderr")


def cap_text(text: str, limit: int) -> str:
    """`text` if its UTF-8 form fits in `limit` bytes, else its start and a marker naming what was cut,
    e.g. `… [truncated 9,437,184 bytes]`, the whole at most `limit` bytes."""
    if len(text) * 4 <= limit or (len(text) <= limit and text.isascii()):
        return text  # fits without encoding (the common case, and cheap)
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    marker = f"… [truncated {len(data):,} bytes]"  # a first guess of its width, refined below
    keep = max(0, limit - len(marker.encode()) - 2)
    marker = f"… [truncated {len(data) - keep:,} bytes]"
    # Cutting inside a multi-byte character leaves a partial one: drop it rather than store U+FFFD.
    return data[:keep].decode("utf-8", "ignore") + marker


def summary_line(text: str | None, width: int = 160) -> str:
    """The first line of `text`, at most `width` characters, ending in `…` when there is more; bounded
    work whatever the length of the text (a terminal wraps a 10 MB line in quadratic time)."""
    if not text:
        return ""
    line = text[: width + 1].split("\n", 1)[0].rstrip("\r")
    if len(line) > width:
        return line[: width - 1] + "…"
    return line + " …" if len(text) > len(line) + 2 else line


@dataclass(frozen=True, slots=True)
class TextLimits:
    """How many bytes of each text field a stored result keeps (`TESTLEDGER_MAX_MESSAGE_BYTES`,
    `TESTLEDGER_MAX_OUTPUT_BYTES`). The report itself is bounded by `TESTLEDGER_MAX_REPORT_BYTES`."""

    message_bytes: int = 64 * 1024
    output_bytes: int = 1024 * 1024

    @classmethod
    def from_settings(cls) -> TextLimits:
        from testledger.settings import get_settings

        s = get_settings()
        return cls(message_bytes=s.max_message_bytes, output_bytes=s.max_output_bytes)

    def cap_result(self, r: NewResult) -> None:
        """Cap the result's text fields and those of its kept attempts, in place."""
        if r.message is not None:
            r.message = cap_text(r.message, self.message_bytes)
        if r.error_type is not None and len(r.error_type) > ERROR_TYPE_CHARS:
            r.error_type = r.error_type[: ERROR_TYPE_CHARS - 1] + "…"
        for name in _OUTPUT_FIELDS:
            value = getattr(r, name)
            if value is not None:
                setattr(r, name, cap_text(value, self.output_bytes))
        for attempt in r.attempts or ():
            self._cap_attempt(attempt)

    def _cap_attempt(self, attempt: dict[str, Any]) -> None:
        if isinstance(attempt.get("message"), str):
            attempt["message"] = cap_text(attempt["message"], self.message_bytes)
        if isinstance(attempt.get("error_type"), str) and len(attempt["error_type"]) > ERROR_TYPE_CHARS:
            attempt["error_type"] = attempt["error_type"][: ERROR_TYPE_CHARS - 1] + "…"
        for name in _OUTPUT_FIELDS:
            if isinstance(attempt.get(name), str):
                attempt[name] = cap_text(attempt[name], self.output_bytes)


def refuse_nul(**fields: str | None) -> None:
    """Refuse text a caller sent with a NUL character: PostgreSQL cannot store one, SQLite would cut there."""
    from testledger.errors import Invalid

    for name, value in fields.items():
        if value is not None and "\x00" in value:
            raise Invalid(f"{name} contains a NUL character (\\x00); send the text without it")
