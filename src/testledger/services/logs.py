"""A case's log: the executor's log file, or the stored output of an ingested or plugin result; ranges and tail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger.db.tables import CaseResult, Run
from testledger.errors import Invalid, NotFound
from testledger.execute.logstore import LogStore
from testledger.services import runs
from testledger.services.execution import case_log_ref

#: The most one read returns; a client pages through a bigger log with ranges.
MAX_READ_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CaseLog:
    """Where a case's log is: a reference in the log store, or the output stored with its result."""

    run_key: str
    index: int
    #: The run is still going and this case has no result yet: its log may still grow.
    growing: bool
    ref: str | None
    stored: bytes | None


@dataclass(frozen=True, slots=True)
class LogSlice:
    data: bytes
    start: int
    #: Exclusive end offset.
    end: int
    total: int


def find_case_log(db: Session, *, workspace: str, key: str, index: int, log_store: LogStore) -> CaseLog:
    """The log of case `index` of run `key`; `NotFound` when the case printed nothing at all."""
    found = case_log_ref(db, workspace=workspace, key=key, index=index)
    if not found.finished:
        if not found.running:
            raise NotFound(f"run '{key}' has no case {index} (cases are numbered from 0)")
        return CaseLog(found.run_key, index, growing=True, ref=log_store.ref(found.run_key, index), stored=None)
    if found.ref is not None:
        return CaseLog(found.run_key, index, growing=False, ref=found.ref, stored=None)
    row = db.execute(
        select(CaseResult.stdout, CaseResult.stderr).join(Run, Run.id == CaseResult.run_id)
        .where(Run.key == found.run_key, CaseResult.idx == index)
    ).one()
    stored = _stored_output(row.stdout, row.stderr)
    if stored is None:
        raise NotFound(f"case {index} of {found.run_key} printed nothing")
    return CaseLog(found.run_key, index, growing=False, ref=None, stored=stored)


def _stored_output(stdout: str | None, stderr: str | None) -> bytes | None:
    """Ingested reports keep stdout and stderr apart; the log shows stdout, then stderr under a marker."""
    if stdout and stderr:
        text = f"{stdout}{'' if stdout.endswith(chr(10)) else chr(10)}--- stderr ---\n{stderr}"
    else:
        text = stdout or stderr or ""
    return text.encode("utf-8", "replace") if text else None


def read_case_log(
    log: CaseLog, *, log_store: LogStore, start: int = 0, end: int | None = None, tail: int | None = None,
    max_bytes: int = MAX_READ_BYTES,
) -> LogSlice:
    """Bytes `start..end` (exclusive) of the log, or its last `tail` bytes; at most `max_bytes` of them."""
    if start < 0 or (end is not None and end < start) or (tail is not None and tail < 0):
        raise Invalid("a log range needs 0 <= start <= end, and tail must be 0 or more")
    if log.stored is not None:
        return _slice(log.stored, start=start, end=end, tail=tail, max_bytes=max_bytes)
    assert log.ref is not None
    try:
        reader = log_store.open_reader(log.ref)
    except FileNotFoundError:
        if log.growing:
            return LogSlice(b"", 0, 0, 0)
        raise NotFound(f"case {log.index} of {log.run_key} has no log file (it was removed)") from None
    with reader:
        total = reader.seek(0, 2)
        first, last = _bounds(total, start=start, end=end, tail=tail, max_bytes=max_bytes)
        reader.seek(first)
        return LogSlice(reader.read(last - first), first, last, total)


def _slice(data: bytes, *, start: int, end: int | None, tail: int | None, max_bytes: int) -> LogSlice:
    first, last = _bounds(len(data), start=start, end=end, tail=tail, max_bytes=max_bytes)
    return LogSlice(data[first:last], first, last, len(data))


def _bounds(total: int, *, start: int, end: int | None, tail: int | None, max_bytes: int) -> tuple[int, int]:
    if tail is not None:
        return max(0, total - min(tail, max_bytes)), total
    first = min(start, total)
    last = total if end is None else min(end, total)
    return first, min(last, first + max_bytes)



def find_attachment(db: Session, *, workspace: str, key: str, index: int, number: int, root: Path) -> Path:
    """Attachment `number` of a case: a file under the attachments directory, never anywhere else."""
    case = runs.get_case(db, workspace=workspace, key=key, index=index)
    if not 0 <= number < len(case.attachments):
        raise NotFound(f"case {index} of {key} has no attachment {number} (it has {len(case.attachments)})")
    path = Path(case.attachments[number]).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise NotFound(f"attachment {number} of case {index} of {key} is no longer stored")
    return path
