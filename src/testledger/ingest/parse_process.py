"""Reading reports in a second process while this one writes their rows: parsing and converting
take one core, the database driver the other.

The child parses, converts and builds row tuples (no database); it sends them in batches through a
pipe. A reader thread here keeps the pipe drained, so the child never waits while a batch is being
written. The child comes from a fork server (a clean process started once, with the JUnit parser already
imported), never from a fork of this process: a forked child would inherit this process's threads'
state, its database sockets (keeping a killed parent's PostgreSQL transaction open) and both ends of
its pipes (blocking for ever on a full pipe nobody reads). It dies with this process: it watches the
control pipe its job came by, whose only writer is here, and ends when that pipe reaches end-of-file.

The child may start before the job exists (`ParseProcess(early=...)`): `testledger ingest` starts it
as soon as it knows the files, and it parses them in turn while the command imports, opens the store
and creates the run (half a second on a 100k-case report). Nothing the child reads ahead depends on
the run: case ids, indexes and rows are made once the job has come.
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
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from testledger.db.rows import Batch, NewResult, ResultBuffer, RowBuilder
from testledger.errors import Invalid
from testledger.ingest.convert import stream_results
from testledger.ingest.model import Attempt, ParsedCase, ReportInfo, ReportParseError
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


class ParseProcess:
    """A child process that parses reports for one job.

    It can start before the run its rows go to exists: given the report files early, it reads ahead in
    them, in order (up to `READ_AHEAD` parsed cases in all, held in its memory), while this process
    imports, opens the store and creates the run; `run` then sends it the job and it goes on from where
    it is. What it read of files the job does not name is dropped. `close` (or leaving the `with`) ends
    the child, whether it ran a job or not.
    """

    def __init__(self, early: Sequence[Path] = (), *, max_bytes: int = 0) -> None:
        ctx = _context()
        self._receiver, sender = ctx.Pipe(duplex=False)
        # The job travels down `control`; after it, the child watches `control` to die with this process.
        control_in, self._control = ctx.Pipe(duplex=False)
        self.child = ctx.Process(target=_child_main, args=(sender, control_in, tuple(early), max_bytes),
                                 name="testledger-parse", daemon=True)
        try:
            self.child.start()
        finally:
            sender.close()
            control_in.close()
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        if early:
            more = f" and {len(early) - 1:,} more" if len(early) > 1 else ""
            log.info("report parser process %s started early, reading ahead in %s%s", self.child.pid, early[0].name,
                     more)

    def __enter__(self) -> ParseProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def run(self, job: ParseJob, sink: ReportSink) -> None:
        """Parse `job.paths`, handing `sink` each event in order as it arrives; then end the child."""
        if self._reader is not None:
            raise RuntimeError("a parse process runs one job")
        log.info("report parser process %s started for %d file(s)", self.child.pid, len(job.paths))
        inbox: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=2)
        self._reader = threading.Thread(target=_drain, args=(self._receiver, inbox, self._stop),
                                        name="testledger-parse-reader", daemon=True)
        self._reader.start()
        try:
            with contextlib.suppress(OSError):  # a child gone already: its end of the stream says how
                self._control.send(job)
            _dispatch(inbox, sink, self.child, job)
            log.info("report parser process %s parsed %d file(s)", self.child.pid, len(job.paths))
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        if self.child.is_alive():
            self.child.kill()
        self.child.join()
        self._control.close()
        if self._reader is not None:
            # The child's end of the pipe is closed now, so the reader's recv() returns; only then may the
            # pipe be closed here (closing it under a blocked recv() breaks the reader).
            self._reader.join(5)
        self._receiver.close()


def start_early(paths: Sequence[Path], *, max_bytes: int) -> ParseProcess | None:
    """A parse process reading ahead in `paths` (see `ParseProcess`), or None without a second core."""
    return ParseProcess(paths, max_bytes=max_bytes) if available() and paths else None


def _dispatch(inbox: queue.Queue[tuple[Any, ...]], sink: ReportSink, child: Any, job: ParseJob) -> None:
    while True:
        message = inbox.get()
        kind = message[0]
        if kind == "batch":
            sink.write(message[1])
        elif kind == "ahead":
            log.info("report parser process %s had read %d case(s) ahead", child.pid, message[1])
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


def _child_main(sender: Connection, control: Connection, early: tuple[Path, ...], max_bytes: int) -> None:
    gc.disable()  # short-lived acyclic objects only
    try:
        ahead = _read_ahead(early, max_bytes, control)
        job: ParseJob = control.recv()
    except BaseException:  # the parent went away (or was interrupted) before sending a job
        os._exit(1)
    threading.Thread(target=_die_with_parent, args=(control,), name="testledger-lifeline", daemon=True).start()
    try:
        wanted = set(job.paths) if job.max_bytes == max_bytes else set()
        for path in [path for path in ahead if path not in wanted]:
            ahead.pop(path).drop()
        sender.send(("ahead", sum(len(read.got) for read in ahead.values())))
        _parse_all(sender, job, ahead)
        sender.send(("all-done",))
    except BaseException:
        sender.send(("crash", traceback.format_exc(limit=8)))
    finally:
        sender.close()
        os._exit(0)


def _die_with_parent(lifeline: Connection) -> None:
    """End this process as soon as the parent is gone (its end of the control pipe closes with it)."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)


def _parse_all(sender: Connection, job: ParseJob, ahead: dict[Path, _Ahead]) -> None:
    builder = RowBuilder(run_id=job.run_id, workspace_id=job.workspace_id, now=job.now, sqlite=job.sqlite,
                         stored=job.stored)
    buffer = _PipeBuffer(sender, builder, job.batch)
    next_idx = job.first_idx
    for number, path in enumerate(job.paths):
        sender.send(("file", number))
        try:
            read = ahead.pop(path, None)
            report = read.take() if read is not None else _Report.open(path, job.max_bytes)
            with report.stack:
                next_idx, entries = stream_results(report.cases, buffer, first_idx=next_idx,
                                                   workspace_id=job.workspace_id,
                                                   stored_rerun=lambda idx, later: sender.send(("rerun", idx, later)))
            if job.partial:
                buffer.flush()  # the receiver keeps each report in a savepoint: its rows must arrive before it ends
        except ReportParseError as exc:
            buffer.discard()
            builder.forget_known()  # the receiver rolls this report back, cases included
            sender.send(("file-error", number, exc.reason, exc.file, exc.line))
            if not job.partial:
                return
            continue
        sender.send(("file-done", number, next_idx, entries, report.info))
    buffer.flush()


#: Parsed cases the child holds before its job arrives: ~0.4 s of parsing on this machine, ~30 MB.
READ_AHEAD = 60_000
#: And the text they may hold (messages, traces, outputs; a report may be 512 MB of them): ~16-64 MB.
READ_AHEAD_CHARS = 16_000_000


@dataclass(slots=True)
class _Report:
    """A report open for parsing: its format and its cases as the parser yields them."""

    info: ReportInfo
    cases: Iterator[ParsedCase]
    stack: ExitStack

    @classmethod
    def open(cls, path: Path, max_bytes: int) -> _Report:
        from testledger.ingest.parsers import stream_report
        from testledger.ingest.sources import open_report

        stack = ExitStack()
        try:
            info, cases = stream_report(stack.enter_context(open_report(path, max_bytes=max_bytes)), name=path.name)
            return cls(info, cases, stack)
        except BaseException:
            stack.close()
            raise


@dataclass(slots=True)
class _Ahead:
    """What the child read of a report before its job arrived: the report and its first cases (all of
    them once `done`, the file then closed), or the error that stopped the reading (raised when the job
    reaches that report, as it would have been)."""

    report: _Report | None = None
    got: list[ParsedCase] = field(default_factory=list)
    error: Exception | None = None
    done: bool = False

    def take(self) -> _Report:
        if self.report is None:
            assert self.error is not None
            raise self.error
        self.report.cases = _replay(self.got, self.error, iter(()) if self.done else self.report.cases)
        return self.report

    def drop(self) -> None:
        if self.report is not None:
            self.report.stack.close()


def _read_ahead(paths: tuple[Path, ...], max_bytes: int, control: Connection) -> dict[Path, _Ahead]:
    """Parse `paths` in turn until the job arrives on `control`, or `READ_AHEAD` cases (or
    `READ_AHEAD_CHARS` of their text) are held."""
    ahead: dict[Path, _Ahead] = {}
    held = chars = 0
    for path in paths:
        if path in ahead:
            continue
        read = ahead[path] = _Ahead()
        try:
            read.report = _Report.open(path, max_bytes)
            for case in read.report.cases:
                read.got.append(case)
                held += 1
                if case.message or case.stack_trace or case.stdout or case.stderr or case.attempts:
                    chars += _chars(case)
                if held >= READ_AHEAD or chars >= READ_AHEAD_CHARS or (not held & 127 and control.poll()):
                    return ahead  # (a look at the control pipe every 128 cases)
            read.done = True
            read.report.stack.close()  # read to its end: no file stays open for it
        except Exception as exc:
            read.error = exc
        if control.poll():
            break
    return ahead


def _chars(case: ParsedCase | Attempt) -> int:
    """The length of the text a parsed case holds, its attempts' included."""
    texts = (case.message, case.stack_trace, case.stdout, case.stderr)
    return sum(len(text) for text in texts if text) + (
        sum(_chars(attempt) for attempt in case.attempts) if isinstance(case, ParsedCase) else 0)


def _replay(got: list[ParsedCase], error: Exception | None, rest: Iterator[ParsedCase]) -> Iterator[ParsedCase]:
    got.reverse()
    while got:
        yield got.pop()  # each case freed as it is handed on
    if error is not None:
        raise error
    yield from rest
