"""Runs a client reports into over HTTP: open one, append results as tests finish, finish it; and export a run."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from testledger.api.deps import Runner, State, Viewer, acting_workspace, run_workspace
from testledger.api.routes.executions import Key
from testledger.lifecycle import TRIGGER_API
from testledger.provenance import Provenance
from testledger.schemas import ExecutionOut
from testledger.services import export, runs
from testledger.services.results import MAX_RESULTS, AppendedOut, ResultIn, append_results

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])
#: Exports are written to a temporary file first (in memory up to this size), then streamed.
SPOOL_BYTES = 8 * 1024 * 1024


class OpenIn(BaseModel):
    """A run opened by a reporter (`runs start`, `pytest --testledger`): running until finished."""

    pipeline_key: str = Field(min_length=1, max_length=100)
    workspace: str | None = Field(default=None, max_length=16, description="Only without auth; a token has one.")
    environment: str = Field(max_length=50)
    trigger: str | None = Field(default=None, max_length=20,
                                description="manual, plan, gatekeeper or api (default: api).")
    revision: str | None = Field(default=None, max_length=255)
    branch: str | None = Field(default=None, max_length=255)
    build_url: str | None = Field(default=None, max_length=2048)
    labels: dict[str, str] | None = Field(default=None, max_length=50)


@router.post("/open", response_model=ExecutionOut, status_code=201,
             summary="Open a run that results are appended to; it stays RUNNING until finished")
def open_run(principal: Runner, state: State, body: OpenIn) -> ExecutionOut:
    with state.store.write() as db:
        return runs.open_run(
            db, workspace=acting_workspace(principal, body.workspace, state), pipeline_key=body.pipeline_key,
            environment=body.environment, allowed_environments=state.settings.environments,
            provenance=Provenance(actor=principal.operator, trigger=body.trigger or TRIGGER_API, revision=body.revision,
                                  branch=body.branch, build_url=body.build_url),
            labels=body.labels,
        )


class ResultsIn(BaseModel):
    results: list[ResultIn] = Field(
        max_length=MAX_RESULTS,
        description=f"Finished tests in the order they finished (at most {MAX_RESULTS} per request; "
        "the request body is capped like every other).")


@router.post("/{key}/results", response_model=AppendedOut,
             summary="Append finished tests' results to an open run (numbered after its last result)")
def add_results(principal: Runner, state: State, key: Key, body: ResultsIn) -> AppendedOut:
    with state.store.write() as db:
        return append_results(db, workspace=run_workspace(principal, key), key=key, results=body.results)


class FinishIn(BaseModel):
    status: Literal["completed", "cancelled", "timeout"] = "completed"
    result: Literal["passed", "failed", "error", "skipped"] | None = Field(
        default=None, description="Default: derived from the cases.")
    force: bool = Field(default=False, description="Allow a result milder than the cases give; noted on the run.")


@router.post("/{key}/finish", response_model=ExecutionOut, summary="Finish an open run")
def finish_run(principal: Runner, state: State, key: Key, body: FinishIn) -> ExecutionOut:
    workspace = run_workspace(principal, key)
    with state.store.write() as db:
        runs.finish_run(db, workspace=workspace, key=key, status=body.status, result=body.result, force=body.force,
                        actor=principal.operator)
        return runs.show_execution(db, workspace=workspace, key=key)


@router.get("/{key}/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/xml": {}, "application/json": {}}}},
            summary="A run's results as a JUnit XML or CTRF JSON report")
def export_run(
    principal: Viewer, state: State, key: Key,
    format: Annotated[str, Query(max_length=20, description="junit or ctrf.")] = "junit",
) -> StreamingResponse:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by the stream
    try:
        with state.store.read() as db:
            export.export_run(db, workspace=run_workspace(principal, key), key=key, format=format, out=spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    media = "application/json" if format == "ctrf" else "application/xml"
    return StreamingResponse(_chunks(spool), media_type=media)


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(256 * 1024):
            yield chunk
