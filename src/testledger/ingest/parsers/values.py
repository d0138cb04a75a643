"""Normalising raw report values: NUL-free text, durations in milliseconds, integer fields.

The one rule for durations: a value that is negative, not a finite number, or longer than
``MAX_DURATION_MS`` (a year) is unknown (``None``), never stored. Report writers do emit
``time="1e306"`` or ``Elapsed: 1e308``; a wrong duration is worse than a missing one, and the sum
of a run's durations must stay within the store's 64-bit integers.
"""

from __future__ import annotations

import math
import re

from testledger.ingest.model import ReportParseError

#: A bare integer time at or above this is read as nanoseconds, not seconds: no real test
#: runs for 11.5 days, but container-structure-test writes e.g. time="999638317".
NANOSECOND_THRESHOLD = 1_000_000

#: The longest duration kept, in milliseconds: 366 days. Even 10 million results this long sum
#: to 3e17 ms, well inside a 64-bit integer (9.2e18).
MAX_DURATION_MS = 366 * 24 * 3600 * 1000.0

_SURROGATE = re.compile("[\ud800-\udfff]")


def duration_ms(value: float | None) -> float | None:
    """A duration in milliseconds if it is a plausible one, else ``None`` (see the module rule)."""
    if value is None or not math.isfinite(value) or value < 0 or value > MAX_DURATION_MS:
        return None
    return value


def clean(text: str | None) -> str | None:
    """Drop NUL characters, which no database column or terminal accepts; keep all else verbatim."""
    if text is None:
        return None
    if not text.isascii() and _SURROGATE.search(text):
        # JSON can spell one ("\ud800"); it is no character, and no store can encode it.
        raise ReportParseError(
            "text holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character: "
            "fix the tool that wrote the report"
        )
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
    if 0 <= value < NANOSECOND_THRESHOLD and not nanos:  # nearly every value: plainly seconds (NaN fails here)
        return value * 1000.0
    if (nanos or value >= NANOSECOND_THRESHOLD) and raw.strip().isdigit():
        return duration_ms(value / 1_000_000.0)
    return duration_ms(value * 1000.0)


def number_to_ms(value: object, *, scale: float = 1.0) -> float | None:
    """A JSON number (already in some unit) scaled to milliseconds; anything else is ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return duration_ms(float(value) * scale)
    except OverflowError:  # an int too large for a float (JSON allows 1e400 written out)
        return None


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
    return duration_ms(total * 1000.0)


def to_int(raw: str | None) -> int | None:
    """A line number or count attribute, or ``None`` when it is not a plain integer."""
    if raw is None:
        return None
    text = raw.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    return None
