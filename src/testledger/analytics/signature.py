"""Failure signatures: the exception type, the message with its variable parts masked, and the top frames.

Two failures with the same signature are the same failure: `Timeout after 30s on 10.0.0.7` and
`Timeout after 45s on 10.0.0.9` join one cluster; `KeyError: 'user'` and `KeyError: 'order'` do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from hashlib import blake2b

#: Longest message text kept in a pattern: enough to tell failures apart, bounded for hostile reports.
PATTERN_CHARS = 300
TOP_FRAMES = 3

# Order matters: the specific shapes (uuids, timestamps, paths) go before bare numbers eat their digits.
_MASKS = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"), "<ts>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<ts>"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@+-]+){2,}[\\/]?"), "<path>"),
    (re.compile(r"\b(?:tmp|temp|pytest-of-|pytest-)[\w-]*", re.I), "<tmp>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"(?<![A-Za-z_<])\d+(?:\.\d+)*"), "<n>"),  # "30s" and "10.0.0.7" too; not "test1"
    (re.compile(r"\s+"), " "),
)
_PY_FRAME = re.compile(r'File "([^"]+)", line \d+, in (\S+)')
_JAVA_FRAME = re.compile(r"^\s*at ([\w$.<>]+)\(", re.M)
_JS_FRAME = re.compile(r"^\s*at (?:async )?([\w$.<>]+) \(", re.M)


@dataclass(frozen=True, slots=True)
class Signature:
    digest: str
    error_type: str | None
    pattern: str
    frames: str | None


def mask(message: str) -> str:
    """The message with numbers, ids, hex, paths, timestamps and temp names replaced by placeholders."""
    text = message[: PATTERN_CHARS * 4]
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text.strip()[:PATTERN_CHARS]


def top_frames(stack_trace: str | None) -> str | None:
    """The innermost frames of a trace (file name and function, never line numbers)."""
    if not stack_trace:
        return None
    trace = stack_trace[:65_536]
    python = _PY_FRAME.findall(trace)
    if python:  # Python prints the innermost frame last
        frames = [f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]}:{func}" for path, func in python[-TOP_FRAMES:]]
    else:
        frames = (_JAVA_FRAME.findall(trace) or _JS_FRAME.findall(trace))[:TOP_FRAMES]
    return " < ".join(frames) or None


def signature_of(*, error_type: str | None, message: str | None, stack_trace: str | None) -> Signature:
    kind = (error_type or "").strip()[:255] or None
    text = (message or "").strip()
    if kind and text.startswith(kind):  # "AssertionError: x" carries its type twice
        text = text[len(kind):].lstrip(": ")
    pattern = mask(text)
    frames = top_frames(stack_trace)
    raw = "\x1f".join((kind or "", pattern, frames or ""))
    return Signature(blake2b(raw.encode("utf-8", "replace"), digest_size=16).hexdigest(), kind, pattern, frames)
