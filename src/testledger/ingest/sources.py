"""Finding report files (files, folders, globs) and opening them safely: gzip, size cap, digest."""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

from testledger.errors import Invalid, NotFound
from testledger.ingest.model import ReportParseError

#: File endings looked at when a folder is given (anything can be named explicitly).
REPORT_SUFFIXES = (".xml", ".json", ".trx", ".tap", ".out", ".jsonl", ".txt", ".log", ".gz")
GZIP_MAGIC = b"\x1f\x8b"


def expand_sources(items: list[str]) -> list[Path]:
    """Files as given, folders searched recursively for report-like files, globs expanded.

    Order is stable (as given, then sorted within a folder or glob) and duplicates are dropped.
    """
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(REPORT_SUFFIXES))
            if not matches:
                raise NotFound(f"no report files in folder '{item}' (looked for {', '.join(REPORT_SUFFIXES)})")
            found.extend(matches)
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not matches:
                raise NotFound(f"no files match '{item}'")
            found.extend(matches)
        else:
            raise NotFound(f"report file '{item}' not found")
    unique = dict.fromkeys(p.resolve() for p in found)
    return list(unique)


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of the file as stored on disk (compressed or not)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class BoundedReader(io.RawIOBase):
    """Reads through to `inner` and fails once more than `limit` bytes came out of it."""

    def __init__(self, inner: IO[bytes], *, limit: int, name: str) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit
        self._name = name
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._limit + 1 - self.consumed
        data = self._inner.read(min(size, self._limit + 1 - self.consumed) or 1)
        self.consumed += len(data)
        if self.consumed > self._limit:
            raise ReportParseError(
                f"report is larger than the {self._limit:,}-byte limit; raise TESTLEDGER_MAX_REPORT_BYTES "
                "or split the report",
                file=self._name,
            )
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def open_report(path: Path, *, max_bytes: int) -> Iterator[IO[bytes]]:
    """The report's bytes, gunzipped when compressed, capped at `max_bytes` after decompression."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise Invalid(f"cannot read report '{path}': {exc.strerror}") from exc
    with raw:
        stream: IO[bytes] = raw
        if raw.read(2) == GZIP_MAGIC:
            raw.seek(0)
            stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        else:
            raw.seek(0)
        bounded = BoundedReader(stream, limit=max_bytes, name=path.name)
        try:
            yield io.BufferedReader(bounded, buffer_size=1 << 16)
        except (OSError, EOFError) as exc:
            # gzip raises BadGzipFile (an OSError) or EOFError for truncated archives.
            raise ReportParseError(f"not a readable gzip file ({exc})", file=path.name) from exc
