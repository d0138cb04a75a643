"""Launching a pipeline run: apply the pipeline document when one is given and it changed, then create its
pending run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from testledger.errors import Invalid, NotFound
from testledger.provenance import Provenance
from testledger.schemas import LaunchedOut
from testledger.services.execution import StoredVersion, create_pipeline_run, stored_version

if TYPE_CHECKING:  # a run is prepared on a Core connection: the ORM only applies a changed document
    from sqlalchemy.orm import Session

    from testledger.pipelinefile import PipelineFile

logger = logging.getLogger(__name__)


def prepare_run(
    db: Session | Connection,
    *,
    workspace: str,
    pipeline: PipelineFile | str,
    provenance: Provenance,
    allowed_environments: Sequence[str],
    workdir: Path,
    environment: str | None = None,
    overrides: dict[str, str] | None = None,
    parallelism: int | None = None,
) -> LaunchedOut:
    """A pending run of `pipeline` (a validated document, applied first as a new version when it
    changed, or the key of a stored pipeline), ready for an executor to run its cases.

    A document's cases run in `workdir` (its file's directory), which is stored with the version; a
    stored pipeline's run in the directory its file was applied from (else `workdir`). Parameters
    and `parallelism` are checked first, so a run that could not start is never created."""
    stored: StoredVersion | None
    if isinstance(pipeline, str):
        key = pipeline
        # Its cases are counted here, not built (they are read again, as the run's plan, by the executor).
        stored = stored_version(db, workspace=workspace, key=key)
        cases = stored.cases
        workdir = stored.directory or workdir
    else:
        key = pipeline.spec.key
        stored = _current(db, workspace=workspace, key=key, document=pipeline.spec.stored(workdir))
        if stored is None:
            _apply(db, workspace=workspace, document=pipeline, actor=provenance.actor, directory=workdir)
        cases = len(pipeline.spec.cases)  # the version just applied, or an equal one
    run = create_pipeline_run(  # with the version read above, if any: not read again
        db, workspace=workspace, pipeline_key=key, provenance=provenance,
        allowed_environments=allowed_environments, environment=environment, overrides=overrides,
        workdir=workdir, parallelism=parallelism, stored=stored,
    )
    logger.info("run %s prepared: %d cases of pipeline %s in %s", run.execution_id, cases, key, workdir)
    return LaunchedOut(run_key=run.execution_id, workspace=workspace, cases=cases, workdir=workdir)


def _current(
    db: Session | Connection, *, workspace: str, key: str, document: dict[str, Any]
) -> StoredVersion | None:
    """The pipeline's current version when `document` is it already (a CI job runs the same file each time):
    then nothing is applied, and the run needs no ORM. None when the document is to be applied."""
    try:
        stored = stored_version(db, workspace=workspace, key=key)
    except (NotFound, Invalid):  # a new workspace or pipeline, or one only known from ingested reports
        return None
    return stored if stored.document == document else None


def _apply(db: Session | Connection, *, workspace: str, document: PipelineFile, actor: str, directory: Path) -> None:
    """A new version of the pipeline (the ORM's work: versions, cases), in the caller's transaction."""
    from sqlalchemy.orm import Session

    from testledger.services.pipelines import apply_pipeline

    if isinstance(db, Session):
        apply_pipeline(db, workspace=workspace, document=document, actor=actor, directory=directory,
                       with_cases=False)
        return
    # A session joined to the connection's transaction: committed or rolled back with the rest of the run's
    # preparation, by whoever began it.
    with Session(bind=db) as session:
        apply_pipeline(session, workspace=workspace, document=document, actor=actor, directory=directory,
                       with_cases=False)
