"""Pipelines (the seed's test definitions): lookup and creation on first use."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger.db.tables import Pipeline, Workspace
from testledger.errors import Invalid, NotFound

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def validate_pipeline_key(key: str) -> str:
    if not _KEY.match(key):
        raise Invalid(
            f"invalid pipeline key '{key}' (expected up to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)"
        )
    return key


def find_pipeline(db: Session, *, workspace: Workspace, key: str) -> Pipeline:
    pipeline = db.scalar(select(Pipeline).where(Pipeline.workspace_id == workspace.id, Pipeline.key == key))
    if pipeline is None:
        raise NotFound(f"pipeline '{key}' not found in workspace {workspace.key}")
    return pipeline


def ensure_pipeline(db: Session, *, workspace: Workspace, key: str, name: str | None = None) -> Pipeline:
    """The pipeline with this key; created (version 0, no cases) when a run names an unknown one,
    as `testledger ingest --pipeline` and `runs start --pipeline` do for CI-only pipelines."""
    pipeline = db.scalar(select(Pipeline).where(Pipeline.workspace_id == workspace.id, Pipeline.key == key))
    if pipeline is None:
        pipeline = Pipeline(
            workspace_id=workspace.id, key=validate_pipeline_key(key), name=name or key, version=0,
            parallelism=1, retries=0, fail_fast=False,
        )
        db.add(pipeline)
        db.flush()
    return pipeline
