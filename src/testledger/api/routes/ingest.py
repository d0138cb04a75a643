"""/api/v1/ingest: report files uploaded as multipart, streamed to the ingest service, into one run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel

from testledger.api.deps import Runner, State, acting_workspace
from testledger.api.routes.executions import parse_labels
from testledger.errors import Invalid
from testledger.lifecycle import TRIGGER_API
from testledger.schemas import IngestOptions, ReportFileOut, TotalsOut
from testledger.services import runs
from testledger.services.ingest import ReportStream, ingest_files

PATH = "/api/v1/ingest"
router = APIRouter(tags=["ingest"])


class IngestedOut(BaseModel):
    """The run the uploads went into, and what became of each upload."""

    execution_id: str
    status: str
    result: str | None
    totals: TotalsOut
    files: list[ReportFileOut]


@router.post(PATH, response_model=IngestedOut, status_code=201, summary="Ingest uploaded reports into one run")
def ingest(
    principal: Runner, state: State,
    files: Annotated[list[UploadFile], File(description="Report files (gzip accepted).")],
    pipeline_key: Annotated[str | None, Form(max_length=100)] = None,
    environment: Annotated[str, Form(max_length=50)] = "ci",
    revision: Annotated[str | None, Form(max_length=64)] = None,
    branch: Annotated[str | None, Form(max_length=255)] = None,
    build_url: Annotated[str | None, Form(max_length=2048)] = None,
    label: Annotated[list[str] | None, Form(description="KEY=VALUE; repeat for more.")] = None,
    run: Annotated[str | None, Form(max_length=64, description="Add to this open run.")] = None,
    partial: Annotated[bool, Form()] = False,
    workspace: Annotated[str | None, Form(max_length=16)] = None,
) -> IngestedOut:
    if not run and not pipeline_key:
        raise Invalid("pipeline_key is required when no run is given (e.g. pipeline_key=unit-tests)")
    ws = acting_workspace(principal, workspace, state)
    settings = state.settings
    options = IngestOptions(
        actor=principal.operator, pipeline_key=pipeline_key, environment=environment,
        allowed_environments=tuple(settings.environments), trigger=TRIGGER_API, revision=revision, branch=branch,
        build_url=build_url, labels=parse_labels(label), run_key=run, partial=partial,
        max_report_bytes=settings.max_report_bytes,
        # Parsed in this process: forking a parse process from a threaded server is not this route's call.
        parse_process_min_bytes=None,
    )
    # Each upload is streamed to the service in pieces under the name the client sent (reduced to a
    # safe base name there): never held whole in memory, never a path the client chose.
    sources = [ReportStream(name=upload.filename or f"report-{number}", stream=upload.file)
               for number, upload in enumerate(files)]
    with state.store.write() as db:
        outcome = ingest_files(db, workspace=ws, sources=sources, options=options)
        execution = runs.get_execution(db, workspace=ws, key=outcome.run_key, with_cases=False)
    state.metrics.ingested(sum(f.cases for f in outcome.files))
    return IngestedOut(execution_id=execution.execution_id, status=execution.status, result=execution.result,
                       totals=execution.totals, files=outcome.files)

