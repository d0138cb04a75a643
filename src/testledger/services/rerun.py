"""Rerunning a finished run: a new run of the same pipeline version, environment and parameters that
executes only the cases that did not pass (or all of them), linked to the original by `rerun_of`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger import lifecycle
from testledger.db import records
from testledger.db.tables import Case, CaseResult, Pipeline, PipelineVersion, Run
from testledger.errors import Conflict, Invalid
from testledger.pipelinefile import SOURCE_DIRECTORY, PipelineSpec
from testledger.provenance import Provenance
from testledger.services.execution import HEARTBEATING, version_spec

logger = logging.getLogger(__name__)


class NothingToRerun(Conflict):
    """Every case of the run passed: a rerun of its failures would be empty, so none is created."""


class RerunCase(BaseModel):
    key: str = Field(description="The pipeline case's key.")
    reason: str = Field(description="Why it runs again: failed, error, not run: ..., needed by 'x', or all.")


class RerunOut(BaseModel):
    """A pending rerun, ready for an executor: the cases it executes and why each one is there."""

    run_key: str
    workspace: str
    rerun_of: str
    cases: list[RerunCase]
    workdir: Path = Field(description="Directory its cases run in (the version's, else the caller's).")
    #: Parameter values the executor needs that the stored run does not hold (secrets given again,
    #: the original's recorded values). Never serialised, never shown.
    overrides: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)


def rerun_cases(
    db: Session,
    *,
    workspace: str,
    key: str,
    provenance: Provenance,
    allowed_environments: Sequence[str],
    workdir: Path,
    failed_only: bool = True,
    parameters: dict[str, str] | None = None,
    parallelism: int | None = None,
) -> RerunOut:
    """A pending run that executes again the cases of finished run `key` that failed, errored or
    never ran (with every case they need), or all of its cases (`failed_only=False`).

    Same pipeline version, environment and parameters; secret values are never stored, so one
    passed when the original started (not read from `from_env`/`from_file`) must be given again in
    `parameters`. The original run is only read. Raises `NothingToRerun` when every case passed."""
    from testledger.execute.plan import MAX_PARALLELISM, resolve_parameters
    from testledger.execute.selection import with_needs

    if parallelism is not None and not 1 <= parallelism <= MAX_PARALLELISM:
        raise Invalid(f"--parallel must be between 1 and {MAX_PARALLELISM}, got {parallelism}")
    original = records.find_run(db, workspace=workspace, key=key)
    pipeline = _executed_pipeline(db, original)
    assert original.pipeline_version is not None  # checked by _executed_pipeline
    spec = version_spec(db, pipeline_id=pipeline.id, pipeline_key=pipeline.key, version=original.pipeline_version)
    planned = original.case_keys or [case.key for case in spec.cases]
    chosen = _not_passed(db, original, planned) if failed_only else dict.fromkeys(planned, "all")
    if not chosen:
        raise NothingToRerun(f"run '{key}' has nothing to rerun: all {len(planned)} of its cases passed")
    selection = with_needs(spec, chosen)
    directory = _version_directory(db, pipeline, original.pipeline_version) or workdir
    overrides = _recovered_parameters(spec, original, parameters or {})
    resolve_parameters(spec, overrides, workdir=directory)  # refuse a rerun that could not start
    run = records.create_run(
        db, workspace=workspace, actor=provenance.actor, environment=original.environment,
        allowed_environments=allowed_environments, pipeline_key=pipeline.key, trigger=provenance.trigger,
        parameters=original.parameters, revision=provenance.revision or original.revision,
        branch=provenance.branch or original.branch, build_url=provenance.build_url,
        pipeline_version=original.pipeline_version,
    )
    run.rerun_of = original.key
    run.case_keys = None if len(selection.keys) == len(spec.cases) else selection.keys
    db.flush()
    cases = [RerunCase(key=k, reason=chosen.get(k) or f"needed by '{selection.added[k]}'") for k in selection.keys]
    logger.info("run %s reruns %d cases of run %s", run.key, len(cases), original.key)
    return RerunOut(run_key=run.key, workspace=workspace, rerun_of=original.key, cases=cases, workdir=directory,
                    overrides=overrides)


def _executed_pipeline(db: Session, run: Run) -> Pipeline:
    """The pipeline the run executed; a run that only recorded results elsewhere has none to execute."""
    recorded_by = {"ingest": "ingested from reports", "cli": "opened by `runs start`"}
    executor = run.executor or ""
    how = recorded_by.get(executor) or ("recorded by the pytest plugin" if executor.startswith("pytest:") else None)
    pipeline = db.get(Pipeline, run.test_definition_id) if run.test_definition_id else None
    if how or pipeline is None or not run.pipeline_version:
        what = how or "not executed from a pipeline"
        raise Invalid(f"run '{run.key}' was {what}, so testledger has no cases to execute again: rerun its tests "
                      "where they ran, or define them in a pipeline file and `testledger run` it")
    if executor and not executor.startswith(HEARTBEATING):
        raise Invalid(f"run '{run.key}' was executed by '{executor}', which cannot rerun it")
    if run.status not in lifecycle.TERMINAL:
        raise Conflict(f"run '{run.key}' is still {run.status}: wait for it to finish, or cancel it "
                       f"(`testledger cancel {run.key}`), then rerun it")
    return pipeline


def _not_passed(db: Session, run: Run, planned: list[str]) -> dict[str, str]:
    """The run's pipeline cases that failed, errored or never ran (a need failed, the run stopped,
    no result at all), in pipeline order, each with the reason."""
    rows = db.execute(
        select(Case.key, CaseResult.status, CaseResult.message)
        .join(Case, Case.id == CaseResult.case_id)
        .where(CaseResult.run_id == run.id, CaseResult.parent_idx.is_(None))
    ).all()
    outcomes = {row.key: (row.status, row.message or "") for row in rows}
    chosen: dict[str, str] = {}
    for key in planned:
        status, message = outcomes.get(key, ("", "not run: no result recorded"))
        if status in lifecycle.NOT_PASSED:
            chosen[key] = status
        elif status != lifecycle.PASSED and message.startswith("not run"):
            chosen[key] = message.splitlines()[0][:200]
    return chosen


def _version_directory(db: Session, pipeline: Pipeline, version: int) -> Path | None:
    stored = db.scalar(select(PipelineVersion.spec).where(
        PipelineVersion.pipeline_id == pipeline.id, PipelineVersion.version == version))
    directory = (stored or {}).get(SOURCE_DIRECTORY)
    return Path(directory) if isinstance(directory, str) else None


def _recovered_parameters(spec: PipelineSpec, original: Run, given: dict[str, str]) -> dict[str, str]:
    """The original run's parameter values as overrides for its rerun.

    A non-secret value is what the original recorded (a `from_file` one is read again). A secret is
    read again from where the pipeline says it lives; one that was passed when the original started
    was never stored and must be given again. Only secrets may be given: anything else would not
    be a rerun."""
    from testledger.execute.plan import parameter_text

    unknown = sorted(set(given) - set(spec.parameters))
    if unknown:
        raise Invalid(f"unknown parameter '{unknown[0]}' for pipeline '{spec.key}'")
    plain = sorted(name for name in given if not spec.parameters[name].secret)
    if plain:
        raise Invalid(f"parameter '{plain[0]}' is not secret: a rerun uses the value run '{original.key}' had "
                      "(start a new run for other values)")
    stored: dict[str, Any] = original.parameters or {}
    overrides: dict[str, str] = {}
    for name, parameter in spec.parameters.items():
        if parameter.secret:
            if name in given:
                overrides[name] = given[name]
            elif not (parameter.from_env or parameter.from_file):
                raise Invalid(f"secret parameter '{name}' of run '{original.key}' was passed when it started and "
                              f"is never stored: pass it again (--param {name}=VALUE, or `parameters` in the API)")
        elif name in stored and stored[name] != parameter.shown():
            overrides[name] = parameter_text(stored[name])
    return overrides
