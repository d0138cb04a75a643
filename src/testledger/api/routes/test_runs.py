"""/api/v1/test-runs: the same runs as the seed's `test_runs` records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from testledger.api.deps import ReadDb, State, Viewer, acting_workspace
from testledger.services import runs, test_runs

router = APIRouter(prefix="/api/v1/test-runs", tags=["test-runs"])


@router.get("", response_model=test_runs.TestRunPage, response_model_by_alias=True, summary="List test runs")
def list_test_runs(
    principal: Viewer, db: ReadDb, state: State,
    workspace: Annotated[str | None, Query(max_length=16)] = None,
    pipeline_key: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20, description="running, passed, failed, cancelled or error.")]
    = None,
    environment: Annotated[str | None, Query(max_length=50)] = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=runs.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> test_runs.TestRunPage:
    page = runs.list_executions(
        db, workspace=acting_workspace(principal, workspace, state), pipeline_key=pipeline_key, status=status,
        environment=environment, date_from=date_from, date_to=date_to, limit=limit, cursor=cursor,
    )
    return test_runs.list_test_runs(db, page=page)


@router.get("/{run_id}", response_model=test_runs.TestRunOut, response_model_by_alias=True, summary="One test run")
def get_test_run(principal: Viewer, db: ReadDb, run_id: uuid.UUID) -> test_runs.TestRunOut:
    return test_runs.get_test_run(db, workspace=principal.workspace, run_id=run_id)
