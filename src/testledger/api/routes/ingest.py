"""/api/v1/ingest: report files uploaded as multipart, spooled to disk, ingested into one run."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel

from testledger.api.deps import Runner, State, acting_workspace
from testledger.api.state import ApiState
from testledger.errors import DomainError, Invalid
from testledger.schemas import ExecutionOut, TotalsOut
from testledger.services import runs
from testledger.services.ingest import IngestOutcome, ingest_files

PATH = "/api/v1/ingest"
router = APIRouter(tags=["ingest"])
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class IngestedFileOut(BaseModel):
    name: str
    format: str | None
    cases: int
    duplicate: bool
    error: str | None


class IngestOut(BaseModel):
    execution_id: str
    status: str
    result: str | None
    totals: TotalsOut
    files: list[IngestedFileOut]


def _safe_name(filename: str | None, number: int) -> str:
    """The upload's base name, reduced to safe characters: never a path the client chose."""
    base = _UNSAFE.sub("_", Path(filename or "").name).lstrip(".")[:100]
    return base or f"report-{number}"


@router.post(PATH, response_model=IngestOut, status_code=201, summary="Ingest uploaded reports into one run")
def ingest(
    principal: Runner, state: State,
    files: Annotated[list[UploadFile], File(description="Report files (gzip accepted).")],
    pipeline_key: Annotated[str | None, Form(max_length=100)] = None,
    environment: Annotated[str, Form(max_length=50)] = "ci",
    revision: Annotated[str | None, Form(max_length=255)] = None,
    branch: Annotated[str | None, Form(max_length=255)] = None,
    build_url: Annotated[str | None, Form(max_length=2048)] = None,
    label: Annotated[list[str] | None, Form(description="KEY=VALUE; repeat for more.")] = None,
    run: Annotated[str | None, Form(max_length=64, description="Add to this open run.")] = None,
    partial: Annotated[bool, Form()] = False,
    workspace: Annotated[str | None, Form(max_length=16)] = None,
) -> IngestOut:
    if not run and not pipeline_key:
        raise Invalid("pipeline_key is required when no run is given (e.g. pipeline_key=unit-tests)")
    ws = acting_workspace(principal, workspace, state)
    labels = _labels(label)
    with tempfile.TemporaryDirectory(prefix="testledger-upload-") as spool:
        paths = []
        for number, upload in enumerate(files):
            # One folder per upload: two files with one name stay apart, and keep their names.
            folder = Path(spool) / str(number)
            folder.mkdir()
            path = folder / _safe_name(upload.filename, number)
            with path.open("wb") as out:  # chunk by chunk: an upload is never held whole in memory
                shutil.copyfileobj(upload.file, out, 1024 * 1024)
            paths.append(path)
        try:
            outcome, execution = _ingest(state, principal.operator, ws, paths, run=run, partial=partial, fields={
                "pipeline_key": pipeline_key, "environment": environment, "revision": revision, "branch": branch,
                "build_url": build_url, "labels": labels,
            })
        except DomainError as exc:  # name the upload as the client did, not by the spool's path
            raise type(exc)(_public(str(exc), spool)) from None
    state.metrics.ingested(sum(f.cases for f in outcome.files))
    return IngestOut(
        execution_id=execution.execution_id, status=execution.status, result=execution.result,
        totals=execution.totals,
        files=[IngestedFileOut(name=Path(f.path).name, format=f.format, cases=f.cases, duplicate=f.duplicate,
                               error=_public(f.error, spool) if f.error else None) for f in outcome.files],
    )


def _ingest(
    state: ApiState, actor: str, workspace: str, paths: list[Path], *, run: str | None, partial: bool,
    fields: dict[str, Any],
) -> tuple[IngestOutcome, ExecutionOut]:
    settings = state.settings
    with state.store.write() as db:
        # Parsed in this process: forking a parse process from a threaded server is unsafe.
        outcome = ingest_files(
            db, workspace=workspace, paths=paths, actor=actor, max_bytes=settings.max_report_bytes, run_key=run,
            partial=partial, parse_process_min_bytes=None, allowed_environments=settings.environments,
            trigger="api", **fields,
        )
        return outcome, runs.get_execution(db, workspace=workspace, key=outcome.run_key, with_cases=False)


def _public(text: str, spool: str) -> str:
    return re.sub(re.escape(spool) + r"/\d+/", "", text)


def _labels(values: list[str] | None) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise Invalid(f"label expects KEY=VALUE, got '{item[:100]}'")
        labels[key.strip()] = value
    return labels or None
