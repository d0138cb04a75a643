"""/api/v1/executions: list, show, one case, start, rerun, cancel and refresh runs (the execution seed's shape)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from testledger.api.deps import ReadDb, Runner, State, Viewer, acting_workspace, read_on_loop, run_workspace
from testledger.api.query import openapi_parameters, query_model
from testledger.errors import Invalid
from testledger.lifecycle import TRIGGER_API
from testledger.provenance import Provenance
from testledger.schemas import CaseDetailOut, ExecutionOut, RunPage
from testledger.services import execution, runs

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])

Key = Annotated[str, Field(max_length=64, description="Run key, e.g. WKS-0601-12.")]
Index = Annotated[int, Field(ge=0, le=10_000_000, description="0-based case index (the seed's caseIndex).")]


def schema_response(schema: BaseModel) -> Response:
    """A service's schema, already validated, serialised once by pydantic (FastAPI would check it again:
    a third of the time of a 50-run page)."""
    return Response(schema.model_dump_json(), media_type="application/json")


class RunFilters(BaseModel):
    """The run list's query parameters (`GET /api/v1/executions`)."""

    workspace: str | None = Field(None, max_length=16)
    pipeline_key: str | None = Field(None, max_length=100)
    status: str | None = Field(None, max_length=20, description="Lifecycle, result or test_runs status.")
    result: str | None = Field(None, max_length=20)
    environment: str | None = Field(None, max_length=50)
    branch: str | None = Field(None, max_length=255)
    revision: str | None = Field(None, max_length=255)
    trigger: str | None = Field(None, max_length=20, description="manual, plan, gatekeeper or api.")
    label: list[str] | None = Field(None, max_length=20, description="KEY=VALUE; repeat to require more.")
    date_from: datetime | None = None
    date_to: datetime | None = None
    limit: int = Field(50, ge=1, le=runs.MAX_PAGE)
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")

    def walks_an_index(self) -> bool:
        """Workspace, pipeline and time range walk one index to the page's last row; other filters may scan."""
        return not (self.status or self.result or self.environment or self.branch or self.revision or self.trigger
                    or self.label)


# The 13 parameters validated as one model: FastAPI's handling of each on its own was a sixth of the
# request's CPU (issue 11, `api/query.py`).
@router.get("", response_model=RunPage, summary="List runs, newest first, one keyset page at a time",
            openapi_extra=openapi_parameters(RunFilters))
async def list_executions(
    principal: Viewer, state: State, query: Annotated[RunFilters, Depends(query_model(RunFilters))],
) -> Response:
    def read() -> RunPage:
        with state.store.read_connection() as db:
            return runs.list_executions(
                db, workspace=acting_workspace(principal, query.workspace, state), pipeline_key=query.pipeline_key,
                status=query.status, result=query.result, environment=query.environment, branch=query.branch,
                revision=query.revision, trigger=query.trigger, labels=parse_labels(query.label),
                date_from=query.date_from, date_to=query.date_to, limit=query.limit, cursor=query.cursor,
            )

    return schema_response(await read_on_loop(state, read) if query.walks_an_index() else await run_in_threadpool(read))


@router.get("/{key}", response_model=ExecutionOut, summary="One run with its cases")
def get_execution(
    principal: Viewer, state: State, key: Key,
    cases: Annotated[bool, Query(description="false: the run without its cases.")] = True,
    case_status: Annotated[list[str] | None, Query(max_length=10, description="Only cases with these statuses "
                                                   "(passed, failed, error, skipped); repeat for more.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=runs.MAX_CASE_PAGE, description="Cases per page; with more, "
                                       "`next_cursor` pages on. Default: every case.")] = None,
    cursor: Annotated[str | None, Query(max_length=20, description="`next_cursor` of the previous page.")] = None,
    shown: Annotated[bool, Query(description="The listing `runs show` draws: every case of a run of at most "
                                 "`limit` (default 200), else those that did not pass, with `cases_total`.")] = False,
) -> Response:
    ws = run_workspace(principal, key)
    with state.store.read_connection() as db:
        if shown:
            return schema_response(runs.show_execution(db, workspace=ws, key=key, limit=limit or runs.SHOW_LIMIT))
        return schema_response(runs.get_execution(
            db, workspace=ws, key=key, with_cases=cases, statuses=[s.lower() for s in case_status or []] or None,
            case_limit=limit, cursor=cursor))


@router.get("/{key}/cases/{index}", response_model=CaseDetailOut, summary="One case result in full")
def get_case(principal: Viewer, db: ReadDb, key: Key, index: Index) -> CaseDetailOut:
    return runs.get_case(db, workspace=run_workspace(principal, key), key=key, index=index)


def _bounded(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 200 or any(len(k) > 100 or len(v) > 10_000 for k, v in value.items()):
        raise ValueError("at most 200 parameters, names up to 100 and values up to 10,000 characters")
    return value


Parameters = Annotated[dict[str, str], AfterValidator(_bounded)]


class ExecuteIn(BaseModel):
    """Run a stored pipeline's current version on this server."""

    pipeline_key: str = Field(max_length=100)
    workspace: str | None = Field(default=None, max_length=16, description="Only without auth; a token has one.")
    environment: str | None = Field(default=None, max_length=50)
    parameters: Parameters = Field(default_factory=dict, description="Overrides of the pipeline's parameters.")
    revision: str | None = Field(default=None, max_length=255)
    branch: str | None = Field(default=None, max_length=255)
    build_url: str | None = Field(default=None, max_length=2048)


@router.post("", response_model=ExecutionOut, status_code=202, summary="Start a run; answers at once with its key")
def execute(principal: Runner, state: State, body: ExecuteIn) -> ExecutionOut:
    return state.runs.start(
        workspace=acting_workspace(principal, body.workspace, state), pipeline_key=body.pipeline_key,
        provenance=Provenance(actor=principal.operator, trigger=TRIGGER_API, revision=body.revision,
                              branch=body.branch, build_url=body.build_url),
        environment=body.environment, parameters=body.parameters,
    )


class RerunIn(BaseModel):
    """Run again, on this server, the cases of a finished run that did not pass."""

    failed_only: bool = Field(default=True, description="False reruns every case the original run executed.")
    parameters: Parameters = Field(
        default_factory=dict, description="Values of secret parameters the original run was given (never stored); "
        "other parameters keep the original run's values.")


@router.post(
    "/{key}/rerun", response_model=ExecutionOut, status_code=202,
    summary="Rerun a finished run's failed cases; answers at once with the new run's key",
    description="A new run of the same pipeline version, environment and parameters that executes the cases "
    "that failed, errored or never ran (with the cases they `need`), or all of them (`failed_only: false`); "
    "its `rerun_of` names the original, which is not changed. 409 when the run is still running or every case "
    "passed; 422 when it was ingested or recorded elsewhere (nothing to execute), or a secret parameter it was "
    "given must be passed again.",
)
def rerun(principal: Runner, state: State, key: Key, body: RerunIn | None = None) -> ExecutionOut:
    body = body or RerunIn()
    started, _cases = state.runs.rerun(
        workspace=run_workspace(principal, key), key=key, failed_only=body.failed_only, parameters=body.parameters,
        provenance=Provenance(actor=principal.operator, trigger=TRIGGER_API),
    )
    return started


@router.post("/{key}/cancel", response_model=ExecutionOut, summary="Cancel a run")
def cancel(principal: Runner, state: State, key: Key) -> ExecutionOut:
    workspace = run_workspace(principal, key)
    if state.runs.here(key):
        with state.store.read() as db:  # the visibility check the executor's own cancel does not make
            runs.get_execution(db, workspace=workspace, key=key, with_cases=False)
        return state.runs.cancel(key)
    with state.store.write() as db:
        return execution.request_cancel(db, workspace=workspace, key=key)


@router.post("/{key}/refresh", response_model=ExecutionOut, summary="Repair a run whose executor is gone")
def refresh(principal: Runner, state: State, key: Key) -> ExecutionOut:
    with state.store.write() as db:
        return execution.refresh_run(
            db, workspace=run_workspace(principal, key), key=key, stale_after=state.settings.stale_after_seconds
        )


def parse_labels(values: list[str] | None) -> dict[str, str] | None:
    """`KEY=VALUE` form fields or query parameters as labels."""
    labels: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise Invalid(f"label expects KEY=VALUE, got '{item[:100]}'")
        labels[key.strip()] = value
    return labels or None
