"""Masking secret parameter values as `***` in text and in output streams cut into arbitrary chunks."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from typing import TypeVar, cast

MASK = "***"
T = TypeVar("T")


class Masker:
    """Replaces every secret with `***`; at each position the longest secret wins. A masker without
    secrets is falsy and changes nothing."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        alternatives = "|".join(re.escape(s) for s in self.secrets)
        self._text = re.compile(alternatives) if self.secrets else None
        self._bytes = re.compile(alternatives.encode()) if self.secrets else None
        self.holdback = max((len(s.encode()) for s in self.secrets), default=1) - 1

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, value: str | None) -> str | None:
        if value is None or self._text is None:
            return value
        return self._text.sub(MASK, value)

    def data(self, value: T) -> T:
        """Mask every string inside a JSON-like value."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return cast(T, self.text(value))
        if isinstance(value, dict):
            return cast(T, {k: self.data(v) for k, v in value.items()})
        if isinstance(value, list):
            return cast(T, [self.data(v) for v in value])
        return value

    def bytes(self, value: bytes) -> bytes:
        return value if self._bytes is None else self._bytes.sub(MASK.encode(), value)

    def paths(self, paths: list[str]) -> list[str]:
        """Attachment paths with secrets masked. A file whose path holds a secret is renamed to the
        masked path, so what is stored (and shown, and exported) still leads to the file."""
        if self._text is None:
            return paths
        kept = []
        for path in paths:
            masked = self._text.sub(MASK, path)
            if masked != path:
                masked = _unused(masked)
                with contextlib.suppress(OSError):  # not renamed: the stored path is masked all the same
                    os.renames(path, masked)
            kept.append(masked)
        return kept

    def stream(self) -> StreamMasker:
        return StreamMasker(self)


class StreamMasker:
    """Masks a byte stream chunk by chunk, exactly as masking the whole stream at once would.

    Only matches that start before the last `len(longest secret) - 1` bytes are applied; those
    bytes are held back until more arrive (or `close`). Any secret starting earlier lies wholly
    inside the buffer, so it is decided correctly even when it was split across chunks.
    """

    def __init__(self, masker: Masker) -> None:
        self._pattern = masker._bytes
        self._keep = masker.holdback
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        if self._pattern is None:
            return chunk
        buffer = self._carry + chunk
        emit_end = len(buffer) - self._keep
        out: list[bytes] = []
        position = 0
        for match in self._pattern.finditer(buffer):
            if match.start() >= emit_end:
                break
            out += (buffer[position:match.start()], MASK.encode())
            position = match.end()
        if position < emit_end:
            out.append(buffer[position:emit_end])
            position = emit_end
        self._carry = buffer[position:]
        return b"".join(out)

    def close(self) -> bytes:
        rest, self._carry = self._carry, b""
        return rest if self._pattern is None else self._pattern.sub(MASK.encode(), rest)


def _unused(path: str) -> str:
    """`path`, or `name-2.ext`, `name-3.ext`... when two masked names collide."""
    stem, dot, ext = path.rpartition(".") if "." in os.path.basename(path) else (path, "", "")
    number = 1
    while os.path.lexists(path):
        number += 1
        path = f"{stem}-{number}{dot}{ext}"
    return path
