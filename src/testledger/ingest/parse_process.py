"""Reading a large report in a second process while this one writes its rows: parsing and
converting take one core, the database driver the other.

The child parses, converts and builds row tuples (no database); it sends them in batches through a
pipe. A reader thread here keeps the pipe drained, so the child never waits while a batch is being
written. The child starts by fork and only ever touches the report file; it ends with os._exit, so
nothing of the parent's database connections is used or closed there.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from testledger.db.bulk import Batch, NewResult, ResultBuffer, RowBuilder
from testledger.ingest.convert import StoredRerun, stream_results
from testledger.ingest.model import ReportInfo, ReportParseError
from testledger.lifecycle import Totals


def available() -> bool:
    """Forking is how the child starts cheaply with everything imported; Linux has it, and the
    second process only pays off with a second core."""
    return sys.platform.startswith("linux") and (os.cpu_count() or 1) > 1


@dataclass(frozen=True, slots=True)
class ParseJob:
    path: Path
    max_bytes: int
    run_id: uuid.UUID
    workspace_id: int
    now: datetime
    sqlite: bool
    stored: frozenset[int]
    first_idx: int
    batch: int = 5000


@dataclass(frozen=True, slots=True)
class Parsed:
    next_idx: int
    entries: Totals
    info: ReportInfo


def parse_elsewhere(job: ParseJob, *, write: Callable[[Batch], None], stored_rerun: StoredRerun) -> Parsed:
    """Parse `job.path` in a child process, calling `write` for each batch of rows as it arrives."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(sender, job), name="testledger-parse", daemon=True)
    child.start()
    sender.close()
    inbox: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=2)
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(receiver, inbox, stop), name="testledger-parse-reader", daemon=True)
    reader.start()
    try:
        while True:
            message = inbox.get()
            kind = message[0]
            if kind == "batch":
                write(message[1])
            elif kind == "rerun":
                stored_rerun(message[1], message[2])
            elif kind == "done":
                return Parsed(next_idx=message[1], entries=message[2], info=message[3])
            elif kind == "parse-error":
                raise ReportParseError(message[1], file=message[2], line=message[3])
            else:
                child.join(5)
                detail = message[1] if kind == "crash" else f"exit code {child.exitcode}"
                raise RuntimeError(f"the report parser process for {job.path.name} failed: {detail}")
    finally:
        stop.set()
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
        reader.join(5)


def _drain(receiver: Connection, inbox: queue.Queue[tuple[Any, ...]], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            message = receiver.recv()
        except (EOFError, OSError):
            message = ("ended",)
        while not stop.is_set():
            try:
                inbox.put(message, timeout=0.1)
                break
            except queue.Full:
                continue
        if message[0] in ("done", "parse-error", "crash", "ended"):
            return


class _PipeBuffer(ResultBuffer):
    """The child's end: full batches become row tuples and go down the pipe."""

    def __init__(self, sender: Connection, builder: RowBuilder, batch: int) -> None:
        super().__init__(batch)
        self.sender = sender
        self.builder = builder

    def _write(self, results: list[NewResult]) -> None:
        self.sender.send(("batch", self.builder.rows(results)))


def _child_main(sender: Connection, job: ParseJob) -> None:
    gc.disable()  # short-lived acyclic objects only; and nothing of the parent's may be finalised here
    try:
        sender.send(("done", *_parse(sender, job)))
    except ReportParseError as exc:
        sender.send(("parse-error", exc.reason, exc.file, exc.line))
    except BaseException:
        sender.send(("crash", traceback.format_exc(limit=8)))
    finally:
        sender.close()
        os._exit(0)


def _parse(sender: Connection, job: ParseJob) -> tuple[int, Totals, ReportInfo]:
    from testledger.ingest.detect import HEAD_SIZE, detect_format
    from testledger.ingest.parsers import get_parser
    from testledger.ingest.parsers.stream import peek
    from testledger.ingest.sources import open_report

    builder = RowBuilder(run_id=job.run_id, workspace_id=job.workspace_id, now=job.now, sqlite=job.sqlite,
                         stored=job.stored)
    buffer = _PipeBuffer(sender, builder, job.batch)

    def stored_rerun(idx: int, later: NewResult) -> None:
        sender.send(("rerun", idx, later))

    with open_report(job.path, max_bytes=job.max_bytes) as stream:
        head, replay = peek(stream, HEAD_SIZE)
        info = ReportInfo(format=detect_format(head, name=job.path.name))
        cases = get_parser(info.format).parse(replay, name=job.path.name, info=info)
        next_idx, entries = stream_results(cases, buffer, first_idx=job.first_idx, workspace_id=job.workspace_id,
                                           stored_rerun=stored_rerun)
        buffer.flush()
    return next_idx, entries, info
