"""Runs in the `test_runs` record shape of the seed (camelCase, one status), read from the same rows as executions."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger.db.tables import Run
from testledger.errors import NotFound
from testledger.keys import workspace_of
from testledger.schemas import ExecutionOut, RunPage
from testledger.services import runs


class TestRunOut(BaseModel):
    """The seed's `test_runs` record: status is running, passed, failed, cancelled or error."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: uuid.UUID
    key: str = Field(description="The run's key, as `execution_id` of the execution shape.")
    test_definition_id: uuid.UUID | None = Field(description="The pipeline; null for a run without one.")
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    environment: str
    triggered_by: str


class TestRunPage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    items: list[TestRunOut]
    next_cursor: str | None


def list_test_runs(db: Session, *, page: RunPage) -> TestRunPage:
    """A page of executions (already filtered by `runs.list_executions`) as test_runs records."""
    ids = [e.id for e in page.items]
    definitions = {r.id: r.test_definition_id for r in db.execute(select(Run.id, Run.test_definition_id)
                                                                       .where(Run.id.in_(ids)))}
    return TestRunPage(items=[_record(e, definitions.get(e.id)) for e in page.items], next_cursor=page.next_cursor)


def get_test_run(db: Session, *, workspace: str | None, run_id: uuid.UUID) -> TestRunOut:
    row = db.execute(select(Run.key, Run.test_definition_id).where(Run.id == run_id)).one_or_none()
    try:
        if row is None:
            raise NotFound("no such run")
        # Without a token (local use) the run's own workspace, which its key names.
        execution = runs.get_execution(db, workspace=workspace or workspace_of(row.key), key=row.key,
                                       with_cases=False)
    except NotFound:
        raise NotFound(f"test run '{run_id}' not found") from None
    return _record(execution, row.test_definition_id)


def _record(execution: ExecutionOut, definition: uuid.UUID | None) -> TestRunOut:
    return TestRunOut(
        id=execution.id, key=execution.execution_id, test_definition_id=definition,
        status=execution.test_run_status, started_at=execution.started_at or execution.created_at,
        completed_at=execution.completed_at, environment=execution.environment,
        triggered_by=execution.triggered_by,
    )
