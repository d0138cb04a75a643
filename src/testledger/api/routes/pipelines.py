"""/api/v1/pipelines: apply (create or update) from YAML or JSON, validate, list, show and delete pipelines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from testledger.api.deps import Admin, ReadDb, State, Viewer, WriteDb, acting_workspace
from testledger.errors import Invalid
from testledger.pipelinefile import PipelineFile, PipelineFileError, parse_pipeline
from testledger.schemas import AppliedOut, PipelineOut
from testledger.services import pipelines

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"])
PipelineKey = Annotated[str, Path(max_length=100)]
DOCUMENT_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/json", "text/plain")
DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {t: {"schema": {"type": "string", "description": "A pipeline document."}}
                    for t in ("application/yaml", "application/json")},
    }
}


class DocumentProblemOut(BaseModel):
    line: int
    column: int
    message: str


class ValidationOut(BaseModel):
    valid: bool
    key: str | None = None
    cases: int | None = None
    problems: list[DocumentProblemOut]


class PipelineDocumentInvalid(Invalid):
    def __init__(self, error: PipelineFileError) -> None:
        self.problems = error.problems
        super().__init__(str(error))


async def _document(request: Request, state: Any) -> PipelineFile:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in DOCUMENT_TYPES:
        raise Invalid(f"send the pipeline document as application/yaml or application/json, not '{media or 'none'}'")
    raw = await request.body()  # bounded by the app's body limit
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the pipeline document is not UTF-8 text") from None
    try:
        return parse_pipeline(text, filename="<request>", environments=state.settings.environments)
    except PipelineFileError as exc:
        raise PipelineDocumentInvalid(exc) from None


@router.post("/validate", response_model=ValidationOut, openapi_extra=DOCUMENT_BODY,
             summary="Check a pipeline document; every problem with its line and column")
async def validate(_principal: Viewer, state: State, request: Request) -> ValidationOut:
    try:
        document = await _document(request, state)
    except PipelineDocumentInvalid as exc:
        return ValidationOut(valid=False, problems=[DocumentProblemOut(line=p.line, column=p.column, message=p.message)
                                                    for p in exc.problems])
    return ValidationOut(valid=True, key=document.spec.key, cases=len(document.spec.cases), problems=[])


@router.put("", response_model=AppliedOut, openapi_extra=DOCUMENT_BODY, responses={201: {"model": AppliedOut}},
            summary="Create or update a pipeline (a new version only when the document changed)")
async def apply(principal: Admin, state: State, request: Request, response: Response) -> AppliedOut:
    document = await _document(request, state)
    named = document.spec.workspace
    workspace = acting_workspace(principal, named, state)
    with state.store.write() as db:
        applied = pipelines.apply_pipeline(db, workspace=workspace, document=document, actor=principal.operator)
    response.status_code = 201 if applied.created else 200
    return applied


@router.get("", response_model=list[PipelineOut], summary="List pipelines")
def list_pipelines(principal: Viewer, state: State, db: ReadDb, workspace: str | None = None) -> list[PipelineOut]:
    return pipelines.list_pipelines(db, workspace=acting_workspace(principal, workspace, state))


@router.get("/{key}", response_model=PipelineOut, summary="One pipeline with its current cases")
def get_pipeline(principal: Viewer, state: State, db: ReadDb, key: PipelineKey) -> PipelineOut:
    return pipelines.get_pipeline(db, workspace=acting_workspace(principal, None, state), key=key)


@router.delete("/{key}", status_code=204, response_class=Response, summary="Delete a pipeline that has no runs")
def delete_pipeline(principal: Admin, state: State, db: WriteDb, key: PipelineKey) -> Response:
    pipelines.delete_pipeline(db, workspace=acting_workspace(principal, None, state), key=key)
    return Response(status_code=204)
