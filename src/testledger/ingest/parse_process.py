"""Reading reports in a second process while this one writes their rows: parsing and converting
take one core, the database driver the other.

The child parses, converts and builds row tuples (no database); it sends them in batches through a
pipe. A reader thread here keeps the pipe drained, so the child never waits while a batch is being
written. The child comes from a fork server (a clean process started once, with the JUnit parser already
imported), never from a fork of this process: a forked child would inherit this process's threads'
state, its database sockets (keeping a killed parent's PostgreSQL transaction open) and both ends of
its pipes (blocking for ever on a full pipe nobody reads). It dies with this process: it watches a
lifeline pipe whose only writer is here, and ends when that pipe reaches end-of-file.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import queue
import sys
import threading
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from testledger.db.rows import Batch, NewResult, ResultBuffer, RowBuilder
from testledger.errors import Invalid
from testledger.ingest.convert import stream_results
from testledger.ingest.model import ReportInfo, ReportParseError
from testledger.lifecycle import Totals

log = logging.getLogger(__name__)


def available() -> bool:
    """The fork server starts children cheaply with the parsers imported (POSIX), and the second
    process only pays off with a second core."""
    return sys.platform != "win32" and (os.cpu_count() or 1) > 1


def _context() -> multiprocessing.context.ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, multiprocessing.context.ForkServerContext)
    # The server imports this module and the JUnit parser once; each child starts with them loaded
    # (another format's parser module is imported by the child that first needs it).
    ctx.set_forkserver_preload([__name__, "testledger.ingest.parsers.junit", "testledger.ingest.detect"])
    return ctx


def start_server() -> None:
    """Start the fork server now rather than at the first parse: it boots and imports the parsers
    (~0.3-0.5 s), which a command that knows a large report is coming lets run beside its own start-up
    (imports, store, reading the files) on the other core. Without a second core, nothing."""
    if available():
        _context()
        from multiprocessing import forkserver

        forkserver.ensure_running()


@dataclass(frozen=True, slots=True)
class ParseJob:
    paths: tuple[Path, ...]
    max_bytes: int
    run_id: uuid.UUID
    workspace_id: int
    now: datetime
    sqlite: bool
    stored: frozenset[int]
    first_idx: int
    #: Go on after a report that cannot be read (its rows are rolled back by the receiver).
    partial: bool
    batch: int = 5000


class ReportSink(Protocol):
    """What the writing side does with the stream of one job, report by report."""

    def file_started(self, number: int) -> None: ...
    def write(self, batch: Batch) -> None: ...
    def stored_rerun(self, idx: int, later: NewResult) -> None: ...
    def file_done(self, number: int, next_idx: int, entries: Totals, info: ReportInfo) -> None: ...
    def file_failed(self, number: int, error: ReportParseError) -> None: ...


def parse_elsewhere(job: ParseJob, sink: ReportSink) -> None:
    """Parse `job.paths` in a child process, handing `sink` each event in order as it arrives."""
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    lifeline_in, lifeline_out = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(sender, lifeline_in, job), name="testledger-parse", daemon=True)
    try:
        child.start()
    finally:
        sender.close()
        lifeline_in.close()
    log.info("report parser process %s started for %d file(s)", child.pid, len(job.paths))
    inbox: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=2)
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(receiver, inbox, stop), name="testledger-parse-reader", daemon=True)
    reader.start()
    try:
        _dispatch(inbox, sink, child, job)
        log.info("report parser process %s parsed %d file(s)", child.pid, len(job.paths))
    finally:
        stop.set()
        if child.is_alive():
            child.kill()
        child.join()
        lifeline_out.close()
        # The child's end of the pipe is closed now, so the reader's recv() returns; only then may the
        # pipe be closed here (closing it under a blocked recv() breaks the reader).
        reader.join(5)
        receiver.close()


def _dispatch(inbox: queue.Queue[tuple[Any, ...]], sink: ReportSink, child: Any, job: ParseJob) -> None:
    while True:
        message = inbox.get()
        kind = message[0]
        if kind == "batch":
            sink.write(message[1])
        elif kind == "rerun":
            sink.stored_rerun(message[1], message[2])
        elif kind == "file":
            sink.file_started(message[1])
        elif kind == "file-done":
            sink.file_done(*message[1:])
        elif kind == "file-error":
            sink.file_failed(message[1], ReportParseError(message[2], file=message[3], line=message[4]))
        elif kind == "all-done":
            return
        else:
            child.join(5)
            names = ", ".join(p.name for p in job.paths[:3]) + (", ..." if len(job.paths) > 3 else "")
            if kind == "crash":
                log.error("report parser process %s failed:\n%s", child.pid, message[1])
                detail = message[1].strip().splitlines()[-1]
            elif child.exitcode is not None and child.exitcode < 0:
                detail = f"it was killed by signal {-child.exitcode}"
            else:
                detail = f"it ended with exit code {child.exitcode}"
            raise Invalid(f"the report parser process (reading {names}) failed: {detail}; nothing was stored")


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
        if message[0] in ("all-done", "crash", "ended"):
            return


class _PipeBuffer(ResultBuffer):
    """The child's end: full batches become row tuples and go down the pipe."""

    def __init__(self, sender: Connection, builder: RowBuilder, batch: int) -> None:
        super().__init__(batch)
        self.sender = sender
        self.builder = builder

    def _write(self, results: list[NewResult]) -> None:
        self.sender.send(("batch", self.builder.rows(results)))


def _child_main(sender: Connection, lifeline: Connection, job: ParseJob) -> None:
    gc.disable()  # short-lived acyclic objects only
    threading.Thread(target=_die_with_parent, args=(lifeline,), name="testledger-lifeline", daemon=True).start()
    try:
        _parse_all(sender, job)
        sender.send(("all-done",))
    except BaseException:
        sender.send(("crash", traceback.format_exc(limit=8)))
    finally:
        sender.close()
        os._exit(0)


def _die_with_parent(lifeline: Connection) -> None:
    """End this process as soon as the parent is gone (its end of the lifeline closes with it)."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)


def _parse_all(sender: Connection, job: ParseJob) -> None:
    builder = RowBuilder(run_id=job.run_id, workspace_id=job.workspace_id, now=job.now, sqlite=job.sqlite,
                         stored=job.stored)
    buffer = _PipeBuffer(sender, builder, job.batch)
    next_idx = job.first_idx
    for number, path in enumerate(job.paths):
        sender.send(("file", number))
        try:
            next_idx, entries, info = _parse(sender, buffer, path, job, first_idx=next_idx)
        except ReportParseError as exc:
            buffer.discard()
            builder.forget_known()  # the receiver rolls this report back, cases included
            sender.send(("file-error", number, exc.reason, exc.file, exc.line))
            if not job.partial:
                return
            continue
        sender.send(("file-done", number, next_idx, entries, info))
    buffer.flush()


def _parse(
    sender: Connection, buffer: _PipeBuffer, path: Path, job: ParseJob, *, first_idx: int
) -> tuple[int, Totals, ReportInfo]:
    from testledger.ingest.detect import HEAD_SIZE, detect_format
    from testledger.ingest.parsers import get_parser
    from testledger.ingest.parsers.stream import peek
    from testledger.ingest.sources import open_report

    def stored_rerun(idx: int, later: NewResult) -> None:
        sender.send(("rerun", idx, later))

    with open_report(path, max_bytes=job.max_bytes) as stream:
        head, replay = peek(stream, HEAD_SIZE)
        info = ReportInfo(format=detect_format(head, name=path.name))
        cases = get_parser(info.format).parse(replay, name=path.name, info=info)
        next_idx, entries = stream_results(cases, buffer, first_idx=first_idx, workspace_id=job.workspace_id,
                                           stored_rerun=stored_rerun)
    if job.partial:
        buffer.flush()  # the receiver keeps each report in a savepoint: its rows must arrive before it ends
    return next_idx, entries, info
