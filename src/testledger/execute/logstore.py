"""Where case logs go: a `LogStore` interface, the file store under `logs_dir`, and the streaming sink."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Protocol

from testledger.execute.masking import Masker

#: How much of a case's output is kept in the result itself; the whole output is in the log store.
TAIL_BYTES = 64 * 1024


class LogStore(Protocol):
    """Stores the output of each case of a run. A later object store implements the same four calls."""

    def ref(self, run_key: str, index: int) -> str:
        """The reference of a case's log, known before the case starts (so it can be followed)."""
        ...

    def open_writer(self, ref: str) -> BinaryIO: ...

    def open_reader(self, ref: str) -> BinaryIO:
        """Raise `FileNotFoundError` when nothing was written yet."""
        ...

    def prepare(self, run_key: str) -> None:
        """Called once per run before its cases start."""
        ...


class FileLogStore:
    """Logs as files `<root>/<run key>/<case index>.log`; the reference is the file's path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        #: The logs' directory as text with its separator, the prefix of every reference.
        self._prefix = os.path.join(str(root), "")

    def ref(self, run_key: str, index: int) -> str:
        # Text, not pathlib: this runs once per case, and a Path join cost more than the rest of it.
        return f"{self._prefix}{run_key}{os.sep}{index}.log"

    def prepare(self, run_key: str) -> None:
        (self.root / run_key).mkdir(parents=True, exist_ok=True)

    def open_writer(self, ref: str) -> BinaryIO:
        # Unbuffered: chunks go straight to the file, so `logs --follow` sees them and memory stays flat.
        return open(ref, "ab", buffering=0)

    def open_reader(self, ref: str) -> BinaryIO:
        return open(ref, "rb")


class CaseOutput:
    """One case's output on its way to the log: masked as it streams, with a bounded tail kept.

    The log is opened at the first byte: a case that prints nothing costs no file (creating one
    was a third of the per-case overhead of a quiet command, see benchmarks/bench_execute.py).
    """

    def __init__(self, store: LogStore, ref: str, masker: Masker, *, tail_bytes: int = TAIL_BYTES) -> None:
        self._store, self.ref = store, ref
        self._log: BinaryIO | None = None
        self._mask = masker.stream()
        self._tail = bytearray()
        self._tail_bytes = tail_bytes
        self.truncated = False
        self.size = 0

    def write(self, chunk: bytes) -> None:
        masked = self._mask.feed(chunk)
        if masked:
            self._emit(masked)

    def note(self, text: str) -> None:
        """A line from the executor itself (an HTTP exchange, a kill), masked like any output."""
        self.write(text.encode("utf-8", "replace") + (b"" if text.endswith("\n") else b"\n"))

    def _emit(self, data: bytes) -> None:
        if self._log is None:
            self._log = self._store.open_writer(self.ref)
        self._log.write(data)
        self.size += len(data)
        self._tail += data
        if len(self._tail) > 2 * self._tail_bytes:
            del self._tail[: len(self._tail) - self._tail_bytes]
            self.truncated = True

    def tail_text(self, limit: int) -> str:
        """The last `limit` bytes written so far, as text (evidence for the failure category)."""
        return bytes(self._tail[-limit:]).decode("utf-8", "replace")

    def close(self) -> str | None:
        """Flush the held-back bytes and return the tail as text (None when there was no output)."""
        rest = self._mask.close()
        if rest:
            self._emit(rest)
        if self._log is not None:
            self._log.close()
        if not self._tail:
            return None
        tail = bytes(self._tail[-self._tail_bytes:])
        cut = self.truncated or len(self._tail) > self._tail_bytes
        text = tail.decode("utf-8", "replace")
        return f"[… output truncated; the whole log is in the log store]\n{text}" if cut else text


def list_attachments(directory: str | Path) -> list[str]:
    """Files a case wrote into its attachments directory, searched only when it is not empty."""
    with os.scandir(directory) as entries:
        if next(entries, None) is None:
            return []
    found: list[str] = []
    for dirpath, _dirs, files in os.walk(directory):
        found.extend(os.path.join(dirpath, f) for f in files)
    return sorted(found)
