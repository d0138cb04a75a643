"""Normalising raw report values: NUL-free text, durations in milliseconds, integer fields."""

from __future__ import annotations

import math

#: A bare integer time at or above this is read as nanoseconds, not seconds: no real test
#: runs for 11.5 days, but container-structure-test writes e.g. time="999638317".
NANOSECOND_THRESHOLD = 1_000_000


def clean(text: str | None) -> str | None:
    """Drop NUL characters, which no database column or terminal accepts; keep all else verbatim."""
    if text is None:
        return None
    if "\x00" in text:
        return text.replace("\x00", "")
    return text


def seconds_to_ms(raw: str | None, *, nanos: bool = False) -> float | None:
    """Read a JUnit-style seconds value ("1.5", "2,503.1", "999638317" ns) as milliseconds.

    Empty, unparseable, negative or non-finite values become ``None``: a wrong duration is
    worse than a missing one. ``nanos`` forces integer values to be read as nanoseconds.
    """
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        # Thousands separators ("2,503.1") are the one non-float spelling seen in the wild.
        try:
            value = float(raw.replace(",", ""))
        except ValueError:
            return None
    if value < 0 or not math.isfinite(value):
        return None
    if (nanos or value >= NANOSECOND_THRESHOLD) and raw.strip().isdigit():
        return value / 1_000_000.0
    return value * 1000.0


def number_to_ms(value: object, *, scale: float = 1.0) -> float | None:
    """A JSON number (already in some unit) scaled to milliseconds; anything else is ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value < 0 or not math.isfinite(value):
        return None
    return float(value) * scale


def timespan_to_ms(raw: str | None) -> float | None:
    """Read a .NET TimeSpan ("00:00:01.234", "1.02:03:04.5") as milliseconds."""
    if not raw:
        return None
    text = raw.strip()
    days = 0.0
    parts = text.split(":")
    if len(parts) != 3:
        return seconds_to_ms(text)
    hours_part = parts[0]
    if "." in hours_part:
        day_text, hours_part = hours_part.split(".", 1)
        try:
            days = float(day_text)
        except ValueError:
            return None
    try:
        hours = float(hours_part)
        minutes = float(parts[1])
        seconds = float(parts[2])
    except ValueError:
        return None
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total < 0 or not math.isfinite(total):
        return None
    return total * 1000.0


def to_int(raw: str | None) -> int | None:
    """A line number or count attribute, or ``None`` when it is not a plain integer."""
    if raw is None:
        return None
    text = raw.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    return None
