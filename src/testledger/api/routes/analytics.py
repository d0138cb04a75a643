"""/api/v1/analytics: pipeline health, flaky and slow tests, failure clusters, run comparison, quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from testledger.api.deps import ReadDb, Runner, State, Viewer, WriteDb, acting_workspace, run_workspace
from testledger.api.routes.executions import Key
from testledger.services.analytics import clusters, compare, flaky, health, history, quarantine, slow
from testledger.services.analytics.schemas import (
    ClusterOut,
    ClusterReport,
    Comparison,
    FlakyReport,
    HealthReport,
    QuarantineOut,
    SlowReport,
    TestHistory,
)

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
Workspace = Annotated[str | None, Query(max_length=16, description="Only without auth; a token has one.")]
Pipeline = Annotated[str | None, Query(max_length=100)]
Days = Annotated[int, Query(ge=1, le=366)]
Limit = Annotated[int, Query(ge=1, le=500)]
Test = Annotated[str, Query(min_length=1, max_length=1000, description="`classname::name` or `classname.name`.")]


@router.get("/health", response_model=HealthReport, summary="Pass rate, duration and streaks per pipeline")
def get_health(
    principal: Viewer, state: State, db: ReadDb, workspace: Workspace = None, pipeline: Pipeline = None,
    environment: Annotated[str | None, Query(max_length=50)] = None,
    branch: Annotated[str | None, Query(max_length=255)] = None, days: Days = 7, exclude_quarantined: bool = False,
) -> HealthReport:
    return health.pipeline_health(db, workspace=acting_workspace(principal, workspace, state), pipeline=pipeline,
                                  environment=environment, branch=branch, days=days,
                                  exclude_quarantined=exclude_quarantined)


@router.get("/flaky", response_model=FlakyReport, summary="Flaky tests with their evidence, highest score first")
def get_flaky(
    principal: Viewer, state: State, db: ReadDb, workspace: Workspace = None, pipeline: Pipeline = None,
    branch: Annotated[str | None, Query(max_length=255)] = None, days: Days = 14, limit: Limit = 50,
) -> FlakyReport:
    return flaky.flaky_tests(db, workspace=acting_workspace(principal, workspace, state), pipeline=pipeline,
                             branch=branch, days=days, limit=limit)


@router.get("/slow", response_model=SlowReport, summary="Slowest tests by p95 and duration regressions")
def get_slow(
    principal: Viewer, state: State, db: ReadDb, workspace: Workspace = None, pipeline: Pipeline = None,
    environment: Annotated[str | None, Query(max_length=50, description=(
        "Only runs in this environment (`production` and `development` name `prod` and `dev`). Filtered by "
        "environment or branch, the answer is computed from the raw results: slower on large stores."))] = None,
    branch: Annotated[str | None, Query(max_length=255, description=(
        "Only runs on this branch (computed from the raw results, as with `environment`)."))] = None,
    days: Days = 7, limit: Limit = 20,
) -> SlowReport:
    return slow.slow_tests(db, workspace=acting_workspace(principal, workspace, state), pipeline=pipeline,
                           environment=environment, branch=branch, days=days, limit=limit)


@router.get("/clusters", response_model=ClusterReport, summary="Failures grouped by normalised signature")
def get_clusters(
    principal: Viewer, state: State, db: ReadDb, workspace: Workspace = None, pipeline: Pipeline = None,
    days: Days = 7, limit: Limit = 50,
) -> ClusterReport:
    return clusters.failure_clusters(db, workspace=acting_workspace(principal, workspace, state),
                                     pipeline=pipeline, days=days, limit=limit)


class CategoryIn(BaseModel):
    category: str | None = Field(max_length=20, description="assertion, timeout, error or infrastructure; "
                                 "null returns the cluster to its recorded categories.")


@router.put("/clusters/{cluster}/category", response_model=ClusterOut, summary="Set a failure cluster's category")
def set_category(
    principal: Runner, state: State, db: WriteDb, cluster: Annotated[int, Path(ge=1, le=2**31 - 1)], body: CategoryIn,
    workspace: Workspace = None,
) -> ClusterOut:
    return clusters.set_cluster_category(db, workspace=acting_workspace(principal, workspace, state),
                                         cluster=cluster, category=body.category)


@router.get("/compare/{key}", response_model=Comparison,
            summary="What changed since a base run (default: the last passing run on the same branch)")
def get_compare(
    principal: Viewer, db: ReadDb, key: Key, base: Annotated[str | None, Query(max_length=64)] = None,
) -> Comparison:
    return compare.compare_runs(db, workspace=run_workspace(principal, key), run=key, base=base)


@router.get("/tests/history", response_model=TestHistory, summary="A test's recent results")
def get_history(
    principal: Viewer, state: State, db: ReadDb, test: Test, workspace: Workspace = None, limit: Limit = 50,
) -> TestHistory:
    return history.test_history(db, workspace=acting_workspace(principal, workspace, state), test=test, limit=limit)


@router.get("/quarantines", response_model=list[QuarantineOut], summary="Quarantined tests")
def get_quarantines(
    principal: Viewer, state: State, db: ReadDb, workspace: Workspace = None, include_expired: bool = False,
) -> list[QuarantineOut]:
    return quarantine.list_quarantines(db, workspace=acting_workspace(principal, workspace, state),
                                       include_expired=include_expired)


class QuarantineIn(BaseModel):
    test: str = Field(min_length=1, max_length=1000, description="`classname::name` or `classname.name`.")
    owner: str = Field(min_length=1, max_length=255)
    reason: str = Field(min_length=1, max_length=2000)
    expires_at: datetime | None = Field(default=None, description="When it lifts itself; none: until removed.")
    pipeline: str | None = Field(default=None, max_length=100)


@router.post("/quarantines", response_model=QuarantineOut, status_code=201,
             summary="Quarantine a test: it keeps running and recording; health and gates may leave it out")
def add_quarantine(
    principal: Runner, state: State, db: WriteDb, body: QuarantineIn, workspace: Workspace = None,
) -> QuarantineOut:
    return quarantine.add_quarantine(
        db, workspace=acting_workspace(principal, workspace, state), test=body.test, owner=body.owner,
        reason=body.reason, actor=principal.operator, expires_at=body.expires_at, pipeline=body.pipeline,
    )


@router.delete("/quarantines", status_code=204, response_class=Response, summary="Lift a test's quarantine")
def remove_quarantine(principal: Runner, state: State, db: WriteDb, test: Test, workspace: Workspace = None) -> None:
    quarantine.remove_quarantine(db, workspace=acting_workspace(principal, workspace, state), test=test)
