"""Ingesting reports into a run: one transaction, idempotent per report, reruns as attempts.

Sources are files on disk or streams (an upload and its name). A stream is spooled to a temporary
file while its digest is taken, never held in memory: the parsers, the duplicate check and the
second parse process all read files. Process-wide choices (garbage collection, a second process)
belong to the caller: this service is safe to call from a threaded server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, select

from testledger import keys, lifecycle
from testledger.db import reads
from testledger.db import run_sql as runs
from testledger.db.bulk import ResultWriter, stored_case_ids
from testledger.db.driver_sql import DriverSql
from testledger.db.engine import connection_of
from testledger.db.rows import Batch, NewResult
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid, NotFound
from testledger.ingest.convert import stream_results
from testledger.ingest.model import ReportInfo, ReportParseError
from testledger.ingest.reruns import StoredReruns
from testledger.ingest.sources import file_digest, open_report
from testledger.lifecycle import Totals
from testledger.schemas import IngestOptions, IngestOut, ReportFileOut, TotalsOut

if TYPE_CHECKING:  # imported where a report is large enough for a second process (4 MiB by default)
    from sqlalchemy.orm import Session

    from testledger.ingest import parse_process

logger = logging.getLogger(__name__)

#: A report's name as stored (its identity in a run is this name and its content's digest).
MAX_NAME_CHARS = 255
_SPOOL_CHUNK = 1 << 20


class ByteStream(Protocol):
    """Anything that hands out bytes in pieces: an open file, an upload's spooled file, a socket reader."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ReportStream:
    """A report that arrives as a stream (an HTTP upload): its bytes and the name it was sent with."""

    name: str
    stream: ByteStream


ReportSource = Path | ReportStream


def ingest_files(
    db: Session | Connection, *, workspace: str, sources: Sequence[ReportSource], options: IngestOptions,
    early_parse: parse_process.ParseProcess | None = None,
) -> IngestOut:
    """Ingest `sources` into one run: a new one (described by `options`) or the open run `options.run_key`.

    All-or-nothing: a report that fails to parse raises `Invalid` and the caller's transaction stores
    nothing, unless `options.partial` keeps the reports that parse (each is then its own savepoint).
    A report whose name and content are already in the run is skipped. A new run is completed when
    `options.finish` is set; a run named by `run_key` stays open for `runs finish`.

    `early_parse` is a parse process the caller started on the same files before calling
    (`parse_process.start_early`): it is used when the reports are parsed in a second process,
    else left to the caller to close.
    """
    with _spooled(sources, max_bytes=options.max_report_bytes) as named:
        run = _open_run(db, workspace=workspace, options=options)
        outcome = IngestOut(run_key=run.key)
        first_idx = runs.next_result_index(db, run_id=run.id) if options.run_key else 0
        # One writer for all reports: small reports share batches instead of paying a write each.
        # A run this ingest made gets its counters once, at the end (an open run's as each batch lands).
        writer = ResultWriter(db, run_id=run.id, workspace_id=run.workspace_id, now=utcnow(),
                              defer_counters=not options.run_key)
        _ingest_all(db, run=run, named=named, writer=writer, first_idx=first_idx, options=options, outcome=outcome,
                    early_parse=early_parse)
    failed = outcome.failed_files
    if options.partial and outcome.files and len(failed) == len(outcome.files):
        more = f"; and {len(failed) - 3:,} more" if len(failed) > 3 else ""  # one line, even for 10,000 reports
        listed = "; ".join(f.error or "" for f in failed[:3])
        raise Invalid(f"no report could be read; nothing was stored: {listed}{more}")
    if options.finish and not options.run_key:
        runs.complete_reported_run(db, run=run, counted=writer.pending)
    else:
        writer.write_counters()
    logger.info("ingested %d of %d reports into run %s", len(outcome.files) - len(failed), len(outcome.files),
                run.key)
    return outcome


def _open_run(db: Session | Connection, *, workspace: str, options: IngestOptions) -> runs.RunRef:
    if options.run_key:
        key = options.run_key
        if keys.workspace_of(key) != workspace:
            raise NotFound(f"run '{key}' not found in workspace {workspace}")
        run = runs.hold_run(connection_of(db), key=key)
        if run.status in lifecycle.TERMINAL:
            raise Conflict(f"run '{key}' is already {run.status}; ingest into an open run or omit --run")
        if run.status == lifecycle.PENDING:
            runs.start_run(connection_of(db), key=key)
        return runs.RunRef(run.id, key, run.workspace_id, lifecycle.RUNNING)
    if not options.pipeline_key:
        raise Invalid("a new run needs a pipeline (e.g. --pipeline unit-tests), or name an open run to add to")
    return runs.start_reported_run(
        db, workspace=workspace, actor=options.actor, executor="ingest", pipeline_key=options.pipeline_key,
        environment=options.environment, allowed_environments=options.allowed_environments, trigger=options.trigger,
        revision=options.revision, branch=options.branch, build_url=options.build_url, labels=options.labels,
    )


@dataclass(slots=True)
class _Named:
    """A report to read: the name it is known by and the file holding its bytes."""

    name: str
    path: Path
    sha256: str = ""
    size: int = 0


@contextmanager
def _spooled(sources: Sequence[ReportSource], *, max_bytes: int) -> Iterator[list[_Named]]:
    """Each source as a named file with its digest; streams are copied to a temporary folder first
    (made only when there is a stream: creating and removing it costs milliseconds a run)."""
    with ExitStack() as stack:
        spool: Path | None = None
        named: list[_Named] = []
        for number, source in enumerate(sources):
            if isinstance(source, Path):
                sha256, size = file_digest(source)
                named.append(_Named(stored_name(source.name), source, sha256, size))
                continue
            if spool is None:
                spool = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="testledger-ingest-")))
            named.append(_spool(source, spool / str(number), max_bytes=max_bytes))
        yield named


def stored_name(name: str) -> str:
    """A report name fit to store and print: the last path part, valid UTF-8, at most 255 characters."""
    name = PurePosixPath(name.replace("\\", "/")).name or "report"
    # A file name can hold bytes that are not UTF-8 (surrogate escapes here): show them, don't fail.
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    name = "".join(c if c.isprintable() else "?" for c in name)
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def _spool(source: ReportStream, folder: Path, *, max_bytes: int) -> _Named:
    name = stored_name(source.name)
    folder.mkdir()
    path = folder / name.replace("…", "_")
    digest, size = hashlib.sha256(), 0
    with path.open("wb") as out:
        while chunk := source.stream.read(_SPOOL_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise Invalid(f"report '{name}' is larger than the {max_bytes:,}-byte limit; nothing was stored")
            digest.update(chunk)
            out.write(chunk)
    return _Named(name, path, digest.hexdigest(), size)


def _ingest_all(
    db: Session | Connection, *, run: runs.RunRef, named: list[_Named], writer: ResultWriter, first_idx: int,
    options: IngestOptions,
    outcome: IngestOut, early_parse: parse_process.ParseProcess | None,
) -> None:
    """Each new report in turn; with `partial`, each in a savepoint of its own that a parse error rolls back."""
    reports = _new_reports(db, run=run, is_new=not options.run_key, named=named, outcome=outcome)
    sink = _RunSink(db, run=run, writer=writer, partial=options.partial, reports=reports, first_idx=first_idx)
    total = sum(r.source.size for r in reports)
    offload_from = options.parse_process_min_bytes
    large = bool(reports) and offload_from is not None and total >= offload_from
    if large:  # the second process's module (multiprocessing): ~10 ms that a small ingest does not pay
        from testledger.ingest import parse_process
    if large and parse_process.available():
        job = parse_process.ParseJob(
            paths=tuple(r.source.path for r in reports), max_bytes=options.max_report_bytes, run_id=run.id,
            workspace_id=run.workspace_id, now=utcnow(), sqlite=writer.sqlite,
            # The store's case ids, on SQLite (see `stored_case_ids`): known tests then travel as results only.
            stored=stored_case_ids(connection_of(db)) if writer.sqlite else frozenset(),
            first_idx=first_idx, partial=options.partial, batch=writer.batch,
        )
        with early_parse or parse_process.ParseProcess() as process:
            process.run(job, sink)
    else:
        for number, report in enumerate(reports):
            sink.file_started(number)
            try:
                next_idx, entries, info = _parse_here(report.source.path, writer=writer, sink=sink,
                                                      max_bytes=options.max_report_bytes,
                                                      workspace_id=run.workspace_id)
            except ReportParseError as exc:
                sink.file_failed(number, exc)
                continue
            sink.file_done(number, next_idx, entries, info)
    sink.finish()


@dataclass(slots=True)
class _Report:
    source: _Named
    outcome: ReportFileOut


def _new_reports(
    db: Session | Connection, *, run: runs.RunRef, is_new: bool, named: list[_Named], outcome: IngestOut
) -> list[_Report]:
    """The reports whose name and content this run has not seen; the others are marked duplicates."""
    seen: set[tuple[str, str]] = set()
    if not is_new:  # a run made by this ingest has no reports yet
        files = reads.report_files.c
        stored = connection_of(db).execute(select(files.name, files.sha256).where(files.run_id == run.id))
        seen.update((name, sha256) for name, sha256 in stored)
    reports = []
    for source in named:
        report = _Report(source, ReportFileOut(name=source.name))
        outcome.files.append(report.outcome)
        if (source.name, source.sha256) in seen:
            report.outcome.duplicate = True
            continue
        seen.add((source.name, source.sha256))
        reports.append(report)
    return reports


class _RunSink:
    """Puts the reports' rows into the run, report by report (parsed here or in a second process)."""

    def __init__(
        self, db: Session | Connection, *, run: runs.RunRef, writer: ResultWriter, partial: bool,
        reports: list[_Report],
        first_idx: int,
    ) -> None:
        self.db, self.run, self.writer, self.partial, self.reports = db, run, writer, partial, reports
        self.next_idx = first_idx
        self.reruns = StoredReruns(db, run_id=run.id, writer=writer)
        self.sql = DriverSql.of(db)
        self._savepoint: Any = None
        self._counted_before = Totals()

    def file_started(self, number: int) -> None:
        if self.partial:
            self._savepoint = self.db.begin_nested()
            # Counters that wait in memory are rolled back with the report by hand.
            self._counted_before = dataclasses.replace(self.writer.pending)

    def write(self, batch: Batch) -> None:
        self.writer.write_batch(batch)

    def stored_rerun(self, idx: int, later: NewResult) -> None:
        self.reruns.add(idx, later)

    def file_done(self, number: int, next_idx: int, entries: lifecycle.Totals, info: ReportInfo) -> None:
        report, out = self.reports[number], self.reports[number].outcome
        out.format, out.dialect, out.cases = info.format, info.dialect, next_idx - self.next_idx
        counts = _fields(entries)
        out.entries = TotalsOut(**counts)
        self.next_idx = next_idx
        if self.partial:
            self.reruns.apply()  # this report's rows and merges belong inside its savepoint
        self.sql.later(self.sql.insert_report, self.sql.report_row({
            "run_id": self.run.id, "name": report.source.name, "format": info.format, "dialect": info.dialect,
            "sha256": report.source.sha256, "bytes": report.source.size, "cases": out.cases,
            "entries": counts, "ingested_at": utcnow(),
            "suites": [_fields(s) for s in info.suites] or None, "notes": info.notes or None,
        }))
        if self._savepoint is not None:
            self._savepoint.commit()

    def file_failed(self, number: int, error: ReportParseError) -> None:
        if not self.partial:
            raise Invalid(f"{error}; nothing was stored") from error
        self._savepoint.rollback()
        self.writer.discard()
        self.writer.pending = self._counted_before
        self.reruns.discard()
        self.reports[number].outcome.error = str(error)

    def finish(self) -> None:
        self.reruns.apply()


def _fields(value: Any) -> dict[str, Any]:
    """A flat slotted dataclass as a dict, for JSON (`dataclasses.asdict` deep-copies: 5x the cost)."""
    return {name: getattr(value, name) for name in value.__slots__}


def _parse_here(
    path: Path, *, writer: ResultWriter, sink: _RunSink, max_bytes: int, workspace_id: int
) -> tuple[int, lifecycle.Totals, ReportInfo]:
    from testledger.ingest.parsers import stream_report

    with open_report(path, max_bytes=max_bytes) as stream:
        info, cases = stream_report(stream, name=path.name)
        next_idx, entries = stream_results(cases, writer, first_idx=sink.next_idx, workspace_id=workspace_id,
                                           stored_rerun=sink.stored_rerun)
    return next_idx, entries, info
