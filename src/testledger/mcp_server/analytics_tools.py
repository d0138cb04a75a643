"""The MCP tools over the analytics services: health, flaky, clusters, compare, explain a failure, triage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from testledger.services.analytics import clusters, compare, flaky, health, history, quarantine
from testledger.services.analytics.schemas import (
    ClusterOut,
    ClusterReport,
    Comparison,
    FlakyReport,
    HealthReport,
    HistoryEntry,
    QuarantineOut,
)
from testledger.services.log_excerpts import LogExcerpt
from testledger.services.runs import get_case

if TYPE_CHECKING:
    from testledger.mcp_server.tools import Backend, Caller

Days = Annotated[int, Field(ge=1, le=366)]
Who = Callable[..., "Caller"]
#: Recent results `explain_failure` reads to tell a steady failure from a new or flaky one.
HISTORY = 20


class FailureExplained(BaseModel):
    """Everything an agent needs to triage one failed case, in one answer."""

    execution_id: str
    case_index: int
    test: str
    status: str
    failure_category: str | None
    error: str | None = Field(description="`ErrorType: message` of the failure (first line).")
    log: LogExcerpt = Field(description="The window of the case's log around its first error-like line.")
    recent: list[HistoryEntry] = Field(description=f"The test's last {HISTORY} results, newest first.")
    failing_since: str | None = Field(description="The first run of the current failing streak.")
    passed_recently: bool = Field(description="Whether the test also passed among its recent results.")
    quarantined: bool


def register(server: MCPServer[Any], backend: Backend, who: Who, errors: Callable[[Any], Any]) -> None:
    """Add the analytics and triage tools to `server`; `who` resolves the caller, `errors` maps domain errors."""

    @server.tool(description="Pipeline health over the last `days` (default 7): runs, pass and failure rate, mean "
                 "and p95 duration, current streak, last green and red run, per pipeline, environment and branch, "
                 "with a daily trend. Use it to answer 'is this pipeline healthy?' in one call.")
    @errors
    def pipeline_health(ctx: Context, pipeline_key: str | None = None, environment: str | None = None,
                        branch: str | None = None, days: Days = 7, workspace: str | None = None) -> HealthReport:
        caller = who(backend, ctx, workspace)
        return backend.read(health.pipeline_health, workspace=caller.workspace, pipeline=pipeline_key,
                            environment=environment, branch=branch, days=days)

    @server.tool(description="Flaky tests of the last `days` (default 14), highest score first, each with its "
                 "evidence: passed and failed on one revision, passed on a retry, flip rate on a branch.")
    @errors
    def flaky_tests(ctx: Context, pipeline_key: str | None = None, branch: str | None = None, days: Days = 14,
                    limit: Annotated[int, Field(ge=1, le=200)] = 20, workspace: str | None = None) -> FlakyReport:
        caller = who(backend, ctx, workspace)
        return backend.read(flaky.flaky_tests, workspace=caller.workspace, pipeline=pipeline_key, branch=branch,
                            days=days, limit=limit)

    @server.tool(description="Failures of the last `days` grouped by normalised signature (exception type, "
                 "message with numbers, ids and paths masked, top frames): count, tests affected, first and last "
                 "seen. Use it to see which failures are the same failure.")
    @errors
    def failure_clusters(
        ctx: Context, pipeline_key: str | None = None, days: Days = 7,
        limit: Annotated[int, Field(ge=1, le=200)] = 20, workspace: str | None = None,
    ) -> ClusterReport:
        caller = who(backend, ctx, workspace)
        return backend.read(clusters.failure_clusters, workspace=caller.workspace, pipeline=pipeline_key,
                            days=days, limit=limit)

    @server.tool(description="What changed from a base run to execution_id: new failures, fixed, still failing, "
                 "new and removed tests, duration regressions. Base defaults to the last passing run of the "
                 "pipeline on the same branch.")
    @errors
    def compare_executions(ctx: Context, execution_id: str, base_execution_id: str | None = None,
                           workspace: str | None = None) -> Comparison:
        caller = who(backend, ctx, workspace)
        return backend.read(compare.compare_runs, workspace=caller.workspace, run=execution_id,
                            base=base_execution_id)

    @server.tool(description="One call to triage a failed case: its error and category, the log lines around the "
                 "first error, the test's recent results (is it new, steady or flaky?), since when it fails, and "
                 "whether it is quarantined.")
    @errors
    def explain_failure(ctx: Context, execution_id: str, case_index: Annotated[int, Field(ge=0)],
                        workspace: str | None = None) -> FailureExplained:
        caller = who(backend, ctx, workspace)
        case = backend.read(get_case, workspace=caller.workspace, key=execution_id, index=case_index)
        test = f"{case.classname}::{case.name}" if case.classname else case.case_key
        past = backend.read(history.test_history, workspace=caller.workspace, test=test, limit=HISTORY)
        log = backend.case_log(key=execution_id, index=case_index, who=caller, mode="error", max_bytes=4096)
        streak = []
        for entry in past.results:
            if entry.status not in ("FAILED", "ERROR"):
                break
            streak.append(entry)
        return FailureExplained(
            execution_id=execution_id, case_index=case_index, test=test, status=case.status,
            failure_category=case.failure_category, error=case.error, log=log, recent=past.results,
            failing_since=streak[-1].execution_id if streak else None,
            passed_recently=any(e.status == "PASSED" for e in past.results), quarantined=past.quarantined,
        )

    @server.tool(description="Quarantine a test (named classname::name): it keeps running and recording, but "
                 "health and gates can leave it out until `expires_at` (ISO 8601) or until removed. Needs the "
                 "runner role.")
    @errors
    def quarantine_test(ctx: Context, test: str, owner: str, reason: str, expires_at: datetime | None = None,
                        pipeline_key: str | None = None, workspace: str | None = None) -> QuarantineOut:
        caller = who(backend, ctx, workspace, need="runner")
        return backend.write(quarantine.add_quarantine, workspace=caller.workspace, test=test, owner=owner,
                             reason=reason, actor=caller.actor, expires_at=expires_at, pipeline=pipeline_key)

    @server.tool(description="Set a failure cluster's category by hand (assertion, timeout, error, "
                 "infrastructure), or null to return to the recorded ones. Cluster ids come from "
                 "failure_clusters. Needs the runner role.")
    @errors
    def set_failure_category(ctx: Context, cluster_id: int, category: str | None,
                             workspace: str | None = None) -> ClusterOut:
        caller = who(backend, ctx, workspace, need="runner")
        return backend.write(clusters.set_cluster_category, workspace=caller.workspace, cluster=cluster_id,
                             category=category)
