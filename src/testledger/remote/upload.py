"""Report files as upload streams: gzip-compressed while they are sent, never read whole into memory."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from testledger.errors import NotFound

GZIP_MAGIC = b"\x1f\x8b"
#: Bytes of the file read per compression step.
CHUNK = 256 * 1024


class GzipStream(io.RawIOBase):
    """The gzip encoding of a readable file, produced as it is read (a few hundred KiB in memory).
    Deterministic (no timestamp in the header), so the same report uploads as the same bytes and a
    second upload into the same run is recognised as a duplicate."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source = source
        # Level 1: the fastest; on loopback or a fast network the CPU, not the bytes, is what an upload costs.
        self._zip = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self._pending = bytearray()
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else size
        while len(self._pending) < want and not self._done:
            raw = self._source.read(CHUNK)
            if raw:
                self._pending += self._zip.compress(raw)
            else:
                self._pending += self._zip.flush()
                self._done = True
        out = bytes(self._pending[:want])
        del self._pending[:want]
        return out

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def upload_parts(paths: Sequence[Path]) -> Iterator[list[tuple[str, tuple[str, IO[bytes], str]]]]:
    """Multipart `files` parts for httpx, each streamed from disk: a gzip file as it is, any other compressed
    on the way (the server accepts both and reads the report inside)."""
    from testledger.ingest.sources import report_name

    with ExitStack() as stack:
        parts: list[tuple[str, tuple[str, IO[bytes], str]]] = []
        for path in paths:
            try:
                handle = stack.enter_context(path.open("rb"))
            except FileNotFoundError:
                raise NotFound(f"report '{path}' not found") from None
            if handle.read(2) == GZIP_MAGIC:
                handle.seek(0)
                parts.append(("files", (report_name(path), handle, "application/gzip")))
                continue
            handle.seek(0)
            stream = stack.enter_context(GzipStream(handle))
            parts.append(("files", (report_name(path), stream, "application/gzip")))  # type: ignore[arg-type]
        yield parts
