"""Launching a pipeline run: apply the pipeline document when one is given, then create its pending run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from testledger.provenance import Provenance
from testledger.schemas import LaunchedOut
from testledger.services.execution import create_pipeline_run, stored_version

if TYPE_CHECKING:  # a stored pipeline's run is prepared on a Core connection, without the ORM
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
    and `parallelism` are checked first, so a run that could not start is never created. A document
    is applied through the ORM, so it needs a session; a stored pipeline's run needs only a connection."""
    if isinstance(pipeline, str):
        key = pipeline
        # Its cases are counted here, not built (they are read again, as the run's plan, by the executor).
        stored = stored_version(db, workspace=workspace, key=key)
        cases = stored.cases
        workdir = stored.directory or workdir
    else:
        from sqlalchemy.orm import Session

        from testledger.services.pipelines import apply_pipeline

        if not isinstance(db, Session):
            raise TypeError("applying a pipeline document needs a session (Store.write)")
        key = pipeline.spec.key
        apply_pipeline(db, workspace=workspace, document=pipeline, actor=provenance.actor, directory=workdir,
                       with_cases=False)
        cases = len(pipeline.spec.cases)  # the version just applied, or an equal one
    run = create_pipeline_run(
        db, workspace=workspace, pipeline_key=key, provenance=provenance,
        allowed_environments=allowed_environments, environment=environment, overrides=overrides,
        workdir=workdir, parallelism=parallelism,
    )
    logger.info("run %s prepared: %d cases of pipeline %s in %s", run.execution_id, cases, key, workdir)
    return LaunchedOut(run_key=run.execution_id, workspace=workspace, cases=cases, workdir=workdir)
