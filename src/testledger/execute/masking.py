"""Masking secret parameter values as `***` in text and in output streams cut into arbitrary chunks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar, cast

MASK = "***"
T = TypeVar("T")


class Masker:
    """Replaces every secret with `***`. Empty when a pipeline has no secrets (then a no-op)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._raw = [s.encode() for s in self.secrets]
        self.holdback = max((len(s) for s in self._raw), default=1) - 1

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, value: str | None) -> str | None:
        if value is None or not self.secrets:
            return value
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

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
        for secret in self._raw:
            value = value.replace(secret, MASK.encode())
        return value

    def stream(self) -> StreamMasker:
        return StreamMasker(self)


class StreamMasker:
    """Masks a byte stream chunk by chunk. The last `len(longest secret) - 1` bytes are held back
    until more arrive (or `close`), so a secret split across two chunks is still caught: any secret
    that starts in the emitted part ends inside the buffer that was just masked."""

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        if not self._masker:
            return chunk
        buffer = self._masker.bytes(self._carry + chunk)
        keep = self._masker.holdback
        if keep == 0:
            self._carry = b""
            return buffer
        self._carry = buffer[-keep:]
        return buffer[:-keep]

    def close(self) -> bytes:
        rest, self._carry = self._carry, b""
        return self._masker.bytes(rest) if self._masker else rest
