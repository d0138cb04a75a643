"""Ingesting report files into a run: one transaction, idempotent per file, reruns as attempts."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.db.bulk import Batch, NewResult, ResultWriter, add_to_counters, stored_case_ids
from testledger.db.tables import CaseResult, ReportFile, Run
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid
from testledger.ingest import parse_process
from testledger.ingest.convert import StoredRerun, merge_rerun, stream_results
from testledger.ingest.model import ReportInfo, ReportParseError
from testledger.ingest.sources import file_digest, open_report, report_name
from testledger.services import runs


@dataclass
class FileOutcome:
    path: str
    format: str | None = None
    dialect: str | None = None
    cases: int = 0
    #: The report's own entries by status, before reruns were folded into attempts.
    entries: lifecycle.Totals | None = None
    duplicate: bool = False
    error: str | None = None


@dataclass
class IngestOutcome:
    run_key: str
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def failed_files(self) -> list[FileOutcome]:
        return [f for f in self.files if f.error]


def ingest_files(
    db: Session,
    *,
    workspace: str,
    paths: Sequence[Path],
    actor: str,
    max_bytes: int,
    run_key: str | None = None,
    partial: bool = False,
    finish: bool = True,
    parse_process_min_bytes: int | None = None,
    **run_fields: Any,
) -> IngestOutcome:
    """Ingest `paths` into one run: a new one (created from `run_fields`) or the open run `run_key`.

    All-or-nothing: a file that fails to parse raises `Invalid` and the caller's transaction stores
    nothing, unless `partial` keeps the files that parse (each file is then its own savepoint).
    A file whose content was already ingested into the run is skipped. A new run is completed
    when `finish` is set; a run named by `run_key` stays open for `runs finish`. Files of at least
    `parse_process_min_bytes` are parsed in a second process while this one writes (None: never).
    """
    if run_key:
        run = runs.find_run(db, workspace=workspace, key=run_key, for_update=True)
        if run.status in lifecycle.TERMINAL:
            raise Conflict(f"run '{run_key}' is already {run.status}; ingest into an open run or omit --run")
    else:
        run = runs.create_run(db, workspace=workspace, actor=actor, executor="ingest", started=True, **run_fields)
    if run.status == lifecycle.PENDING:
        runs.transition(db, workspace=workspace, key=run.key, to=lifecycle.RUNNING, run=run)
    outcome = IngestOutcome(run_key=run.key)
    next_idx = runs.next_result_index(db, run_id=run.id) if run_key else 0
    # One writer for all files: small files share batches instead of paying a write each.
    writer = ResultWriter(db, run_id=run.id, workspace_id=run.workspace_id, now=utcnow())
    # Hundreds of thousands of short-lived, acyclic objects: collection passes only cost time here.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _ingest_all(db, run=run, paths=paths, writer=writer, first_idx=next_idx, max_bytes=max_bytes,
                    partial=partial, outcome=outcome, offload_from=parse_process_min_bytes)
    finally:
        if gc_was_enabled:
            gc.enable()
    if partial and outcome.files and len(outcome.failed_files) == len(outcome.files):
        raise Invalid("no report could be read; nothing was stored: " + "; ".join(f.error or "" for f in outcome.files))
    db.refresh(run)
    if finish and not run_key:
        # The run's duration is the test time its reports state, not how long ingesting took.
        report_ms = db.scalar(
            select(func.coalesce(func.sum(CaseResult.duration_ms), 0))
            .where(CaseResult.run_id == run.id, CaseResult.parent_idx.is_(None))
        )
        runs.transition(db, workspace=workspace, key=run.key, to=lifecycle.COMPLETED, run=run,
                        duration_ms=round(report_ms or 0))
    return outcome


def _ingest_all(
    db: Session, *, run: Run, paths: Sequence[Path], writer: ResultWriter, first_idx: int, max_bytes: int,
    partial: bool, outcome: IngestOutcome, offload_from: int | None,
) -> None:
    """Each new file in turn; with `partial`, each in a savepoint of its own that a parse error rolls back."""
    reports = _new_reports(db, run=run, paths=paths, outcome=outcome)
    sink = _RunSink(db, run=run, writer=writer, partial=partial, reports=reports, first_idx=first_idx)
    total = sum(r.size for r in reports)
    if reports and offload_from is not None and total >= offload_from and parse_process.available():
        job = parse_process.ParseJob(
            paths=tuple(r.path for r in reports), max_bytes=max_bytes, run_id=run.id, workspace_id=run.workspace_id,
            now=utcnow(), sqlite=writer.sqlite, stored=stored_case_ids(writer.cache_key), first_idx=first_idx,
            partial=partial, batch=writer.batch,
        )
        parse_process.parse_elsewhere(job, sink)
    else:
        for number, report in enumerate(reports):
            sink.file_started(number)
            try:
                next_idx, entries, info = _parse_here(
                    report.path, writer=writer, first_idx=sink.next_idx, max_bytes=max_bytes,
                    workspace_id=run.workspace_id, stored_rerun=sink.stored_rerun,
                )
            except ReportParseError as exc:
                sink.file_failed(number, exc)
                continue
            sink.file_done(number, next_idx, entries, info)
    writer.flush()


@dataclass
class _Report:
    path: Path
    sha256: str
    size: int
    outcome: FileOutcome


def _new_reports(db: Session, *, run: Run, paths: Sequence[Path], outcome: IngestOutcome) -> list[_Report]:
    """The files whose content this run has not seen; the others are marked duplicates."""
    seen = set(db.scalars(select(ReportFile.sha256).where(ReportFile.run_id == run.id)))
    reports = []
    for path in paths:
        file_outcome = FileOutcome(path=str(path))
        outcome.files.append(file_outcome)
        sha256, size = file_digest(path)
        if sha256 in seen:
            file_outcome.duplicate = True
            continue
        seen.add(sha256)
        reports.append(_Report(path, sha256, size, file_outcome))
    return reports


class _RunSink:
    """Puts the reports' rows into the run, report by report (parsed here or in a second process)."""

    def __init__(
        self, db: Session, *, run: Run, writer: ResultWriter, partial: bool, reports: list[_Report], first_idx: int
    ) -> None:
        self.db, self.run, self.writer, self.partial, self.reports = db, run, writer, partial, reports
        self.next_idx = first_idx
        self._savepoint: Any = None

    def file_started(self, number: int) -> None:
        if self.partial:
            self._savepoint = self.db.begin_nested()

    def write(self, batch: Batch) -> None:
        self.writer.write_batch(batch)

    def stored_rerun(self, idx: int, later: NewResult) -> None:
        _merge_into_stored(self.db, run=self.run, idx=idx, later=later, writer=self.writer)

    def file_done(self, number: int, next_idx: int, entries: lifecycle.Totals, info: ReportInfo) -> None:
        report, out = self.reports[number], self.reports[number].outcome
        out.format, out.dialect, out.cases, out.entries = info.format, info.dialect, next_idx - self.next_idx, entries
        self.next_idx = next_idx
        if self.partial:
            self.writer.flush()  # this report's rows belong inside its savepoint
        self.db.execute(insert(ReportFile).values(
            run_id=self.run.id, name=report_name(report.path), format=info.format, dialect=info.dialect,
            sha256=report.sha256, bytes=report.size, cases=out.cases, entries=dataclasses.asdict(entries),
            ingested_at=utcnow(), suites=[dataclasses.asdict(s) for s in info.suites] or None,
            notes=info.notes or None,
        ))
        if self._savepoint is not None:
            self._savepoint.commit()

    def file_failed(self, number: int, error: ReportParseError) -> None:
        if not self.partial:
            raise Invalid(f"{error}; nothing was stored") from error
        self._savepoint.rollback()
        self.writer.discard()
        self.reports[number].outcome.error = str(error)


def _parse_here(
    path: Path, *, writer: ResultWriter, first_idx: int, max_bytes: int, workspace_id: int,
    stored_rerun: StoredRerun,
) -> tuple[int, lifecycle.Totals, ReportInfo]:
    from testledger.ingest.detect import HEAD_SIZE, detect_format
    from testledger.ingest.parsers import get_parser
    from testledger.ingest.parsers.stream import peek

    with open_report(path, max_bytes=max_bytes) as stream:
        head, replay = peek(stream, HEAD_SIZE)
        info = ReportInfo(format=detect_format(head, name=path.name))
        cases = get_parser(info.format).parse(replay, name=path.name, info=info)
        next_idx, entries = stream_results(cases, writer, first_idx=first_idx, workspace_id=workspace_id,
                                           stored_rerun=stored_rerun)
    return next_idx, entries, info


def _merge_into_stored(db: Session, *, run: Run, idx: int, later: NewResult, writer: ResultWriter) -> None:
    """The rare rerun whose first attempt was already written in an earlier batch."""
    writer.flush()
    row = db.scalars(select(CaseResult).where(CaseResult.run_id == run.id, CaseResult.idx == idx)).one()
    earlier = NewResult(
        idx=idx, case=later.case, status=row.status, duration_ms=row.duration_ms, message=row.message,
        error_type=row.error_type, failure_category=row.failure_category, stack_trace=row.stack_trace,
        stdout=row.stdout, stderr=row.stderr, properties=row.properties, attempts=row.attempts,
        flaky=row.flaky, attachments=row.attachments,
    )
    delta = lifecycle.Totals()
    delta.count(earlier.status, flaky=earlier.flaky, category=earlier.failure_category, sign=-1)
    merge_rerun(earlier, later)
    delta.count(earlier.status, flaky=earlier.flaky, category=earlier.failure_category)
    for name in ("status", "duration_ms", "message", "error_type", "failure_category", "stack_trace",
                 "stdout", "stderr", "properties", "attempts", "flaky", "attachments"):
        setattr(row, name, getattr(earlier, name))
    row.attempt_count = len(earlier.attempts or []) or 1
    db.flush()
    add_to_counters(db, run_id=run.id, delta=delta)
