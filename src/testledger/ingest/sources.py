"""Finding report files (files, folders, globs) and opening them safely: gzip, size cap, digest."""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

from testledger.errors import Invalid, NotFound
from testledger.ingest.model import ReportParseError

#: File endings looked at when a folder is given (anything can be named explicitly).
REPORT_SUFFIXES = (".xml", ".json", ".trx", ".tap", ".out", ".jsonl", ".txt", ".log", ".gz")
GZIP_MAGIC = b"\x1f\x8b"


def expand_sources(items: list[str], *, skipped: list[str] | None = None) -> list[Path]:
    """Files as given, folders searched recursively for report-like files, globs expanded.

    Order is stable (as given, then sorted within a folder or glob) and duplicates are dropped.
    A folder is never left through a symbolic link: such links are skipped, each with a note
    appended to ``skipped`` (a report uploader must not make the ingest read ``/etc``).
    """
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            matches = _folder_reports(path, skipped if skipped is not None else [])
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


def _folder_reports(folder: Path, skipped: list[str]) -> list[Path]:
    """Report-like files under ``folder``; links are followed only while they stay inside it."""
    root = folder.resolve()
    matches: list[Path] = []
    # os.walk does not descend into linked folders (followlinks=False), so only linked files
    # need checking; a link to a folder is a directory entry that is never entered.
    for parent, dirs, files in os.walk(folder):
        for link in (d for d in dirs if os.path.islink(os.path.join(parent, d))):
            skipped.append(f"{report_name(Path(parent, link))}: a link to a folder, not followed")
        for file_name in files:
            if not file_name.lower().endswith(REPORT_SUFFIXES):
                continue
            path = Path(parent, file_name)
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                skipped.append(f"{report_name(path)}: a link that leaves the folder, not followed")
                continue
            if path.is_file():
                matches.append(path)
    return sorted(matches)


def report_name(path: Path) -> str:
    """The file's name as text that can be stored and printed: a byte that is not UTF-8 (a
    POSIX name may hold any) becomes U+FFFD instead of failing the whole ingest."""
    return os.fsencode(path.name).decode("utf-8", errors="replace")


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
            raise _too_large(self._limit, self._name)
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def open_report(path: Path, *, max_bytes: int) -> Iterator[IO[bytes]]:
    """The report's bytes, gunzipped when compressed, capped at `max_bytes` after decompression.

    The cap is checked before any byte reaches a parser: a plain file by its size, a gzip file
    by inflating it once and counting (about 1 GB/s, stopping at the first byte past the cap).
    A gzip bomb of many small test cases is so refused in about a second, instead of after
    parsing and writing `max_bytes` worth of cases first.
    """
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise Invalid(f"cannot read report '{report_name(path)}': {exc.strerror}") from exc
    name = report_name(path)
    with raw:
        stream: IO[bytes] = raw
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if compressed:
            _check_gunzipped_size(raw, limit=max_bytes, name=name)
            raw.seek(0)
            stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        elif os.fstat(raw.fileno()).st_size > max_bytes:
            raise _too_large(max_bytes, name)
        bounded = BoundedReader(stream, limit=max_bytes, name=name)
        try:
            yield io.BufferedReader(bounded, buffer_size=1 << 16)
        except (OSError, EOFError, zlib.error) as exc:
            # gzip raises BadGzipFile (an OSError), EOFError or zlib.error for damaged archives.
            raise _unreadable_gzip(exc, name) from exc


def _check_gunzipped_size(raw: IO[bytes], *, limit: int, name: str) -> None:
    """Inflate the whole file without keeping it; refuse it past `limit` bytes or when damaged."""
    size = 0
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as inflated:
            while chunk := inflated.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit, name)
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable_gzip(exc, name) from exc


def _too_large(limit: int, name: str) -> ReportParseError:
    return ReportParseError(
        f"report is larger than the {limit:,}-byte limit; raise TESTLEDGER_MAX_REPORT_BYTES or split the report",
        file=name,
    )


def _unreadable_gzip(exc: BaseException, name: str) -> ReportParseError:
    return ReportParseError(f"not a readable gzip file ({exc})", file=name)
