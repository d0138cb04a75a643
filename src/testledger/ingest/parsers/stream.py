"""Re-reading a stream's head without seeking, so non-seekable (gzip, socket) inputs can be sniffed."""

from __future__ import annotations

import io
from typing import IO


class ChainedStream(io.RawIOBase):
    """A readable stream that returns ``head`` first and then the rest of ``rest``."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        wanted = len(buffer)
        if self._head.nbytes:
            taken = min(wanted, self._head.nbytes)
            buffer[:taken] = self._head[:taken]
            self._head = self._head[taken:]
            return taken
        data = self._rest.read(wanted)
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if not self._head.nbytes:
            return self._rest.read(size)
        taken = min(size, self._head.nbytes)
        chunk = self._head[:taken].tobytes()
        self._head = self._head[taken:]
        if taken < size:
            chunk += self._rest.read(size - taken) or b""
        return chunk

    def readall(self) -> bytes:
        chunk = self._head.tobytes()
        self._head = memoryview(b"")
        return chunk + self._rest.read()


def peek(stream: IO[bytes], size: int) -> tuple[bytes, IO[bytes]]:
    """Read up to ``size`` bytes (fewer only at end of stream) and a stream that replays them."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    head = b"".join(parts)
    if remaining > 0:  # the stream ended within the head: replay it from memory, with no buffer to allocate
        return head, io.BytesIO(head)
    # Buffered so that line iteration (TAP, go test) does not fall back to byte-sized reads.
    return head, io.BufferedReader(ChainedStream(head, stream), buffer_size=256 * 1024)
