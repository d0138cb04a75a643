"""Pipelines (the seed's test definitions): lookup, creation on first use, and versions applied from files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from testledger.caseid import case_id, defined_identity
from testledger.db.records import ensure_pipeline, ensure_workspace, find_pipeline, find_workspace
from testledger.db.tables import Case, Pipeline, PipelineCase, PipelineVersion, Workspace
from testledger.db.types import utcnow
from testledger.schemas import AppliedOut, PipelineCaseOut, PipelineOut

if TYPE_CHECKING:
    from testledger.pipelinefile import PipelineFile

#: Case ids per `IN (...)` query: well under SQLite's and PostgreSQL's limits on bound parameters.
_IN_CHUNK = 500

# -- pipeline files ----------------------------------------------------------------------------


def apply_pipeline(
    db: Session, *, workspace: str, document: PipelineFile, actor: str, directory: Path | None = None,
    with_cases: bool = True,
) -> AppliedOut:
    """Store a validated pipeline document as a new version; an unchanged document changes nothing.
    `directory` (the file's, absolute) is where the pipeline's relative paths resolve when it runs
    by key; the same document applied from another directory is a new version. Without `with_cases`
    the pipeline returned leaves its case list out (`cases` is None): the caller has the document."""
    spec = document.spec
    ws = ensure_workspace(db, key=workspace)
    pipeline = ensure_pipeline(db, workspace=ws, key=spec.key, name=spec.name)
    stored = spec.stored(directory)
    if pipeline.version:
        current = db.scalar(select(PipelineVersion.spec).where(
            PipelineVersion.pipeline_id == pipeline.id, PipelineVersion.version == pipeline.version))
        if current == stored:
            return AppliedOut(pipeline=_pipeline_out(db, pipeline, ws.key, with_cases=with_cases), created=False)
    now = utcnow()
    version = PipelineVersion(pipeline_id=pipeline.id, version=pipeline.version + 1, spec=stored,
                              source=document.source, created_at=now, created_by=actor)
    db.add(version)
    db.flush()
    identities = [defined_identity(spec.key, case.key) for case in spec.cases]
    ids = [case_id(ws.id, identity) for identity in identities]
    # The known cases are found in a few queries and every case is written by one bulk statement, with no ORM
    # object per case: a lookup and a flush per case made a 10,000-case pipeline take seconds to apply.
    known = {found for start in range(0, len(ids), _IN_CHUNK)
             for found in db.scalars(select(Case.id).where(Case.id.in_(ids[start:start + _IN_CHUNK])))}
    new_rows: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for case, identity, row_id in zip(spec.cases, identities, ids, strict=True):
        values = {"id": row_id, "kind": case.kind, "name": case.name or case.key,
                  "spec": case.model_dump(mode="json", by_alias=True, exclude_none=True)}
        if row_id in known:
            changed.append(values)
        else:
            known.add(row_id)
            new_rows.append({**values, "workspace_id": ws.id, "identity": identity, "key": case.key,
                             "created_at": now})
    if new_rows:
        db.execute(insert(Case), new_rows)
    if changed:
        db.execute(update(Case), changed)  # by primary key
    if ids:  # the version's list, after the cases it refers to
        db.execute(insert(PipelineCase), [
            {"pipeline_version_id": version.id, "position": position, "case_id": row_id}
            for position, row_id in enumerate(ids)
        ])
    pipeline.name, pipeline.description = spec.name or spec.key, spec.description
    pipeline.environment, pipeline.parameters = spec.environment, spec.masked_parameters() or None
    pipeline.timeout_s, pipeline.parallelism, pipeline.retries = spec.timeout, spec.parallelism, spec.retries
    pipeline.fail_fast, pipeline.version, pipeline.updated_at = spec.fail_fast, version.version, now
    db.flush()
    return AppliedOut(pipeline=_pipeline_out(db, pipeline, ws.key, with_cases=with_cases), created=True)


def _pipeline_out(db: Session, pipeline: Pipeline, workspace: str, *, with_cases: bool = True) -> PipelineOut:
    cases = None
    if with_cases:
        rows = db.execute(
            select(PipelineCase.position, Case.key, Case.name, Case.kind)
            .join(PipelineVersion, PipelineVersion.id == PipelineCase.pipeline_version_id)
            .join(Case, Case.id == PipelineCase.case_id)
            .where(PipelineVersion.pipeline_id == pipeline.id, PipelineVersion.version == pipeline.version)
            .order_by(PipelineCase.position)
        ).all()
        cases = [PipelineCaseOut(index=r.position, key=r.key or r.name, name=r.name, kind=r.kind) for r in rows]
    return PipelineOut(
        key=pipeline.key, name=pipeline.name, workspace=workspace, version=pipeline.version,
        environment=pipeline.environment, parameters=pipeline.parameters, timeout_s=pipeline.timeout_s,
        parallelism=pipeline.parallelism, retries=pipeline.retries, fail_fast=pipeline.fail_fast,
        updated_at=pipeline.updated_at, cases=cases,
    )


def get_pipeline(db: Session, *, workspace: str, key: str) -> PipelineOut:
    ws = find_workspace(db, key=workspace, missing=f"pipeline '{key}' not found in workspace {workspace}")
    return _pipeline_out(db, find_pipeline(db, workspace=ws, key=key), ws.key)


def list_pipelines(db: Session, *, workspace: str) -> list[PipelineOut]:
    rows = db.scalars(
        select(Pipeline).join(Workspace, Workspace.id == Pipeline.workspace_id)
        .where(Workspace.key == workspace).order_by(Pipeline.key)
    ).all()
    return [_pipeline_out(db, p, workspace, with_cases=False) for p in rows]


def delete_pipeline(db: Session, *, workspace: str, key: str) -> None:
    """Remove a pipeline and its versions; refused while runs refer to it (their history would lose it)."""
    from sqlalchemy import func

    from testledger.db.tables import Run
    from testledger.errors import Conflict

    ws = find_workspace(db, key=workspace, missing=f"pipeline '{key}' not found in workspace {workspace}")
    pipeline = find_pipeline(db, workspace=ws, key=key)
    used = db.scalar(select(func.count()).select_from(Run).where(Run.test_definition_id == pipeline.id)) or 0
    if used:
        raise Conflict(f"pipeline '{key}' has {used} run{'s' if used != 1 else ''}; it cannot be deleted while "
                       "its history refers to it")
    db.delete(pipeline)
    db.flush()
