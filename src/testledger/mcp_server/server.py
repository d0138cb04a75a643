"""The MCP server: testledger's tools for AI agents, over stdio (`testledger mcp`) or streamable HTTP.

Tool names and parameters follow the execution tools the product grew from (`execution_id`,
`case_index`, `pipeline_key`); descriptions tell an agent what comes back, when to use the tool and
how large the answer can be. A domain error becomes a tool error whose text says what to do.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from testledger import __version__, lifecycle
from testledger.errors import DomainError, Forbidden
from testledger.mcp_server.tools import (
    DEFAULT_CASES,
    Backend,
    Caller,
    CaseView,
    ExecutionView,
    StartedExecution,
    caller,
)
from testledger.schemas import ExecutionOut, PipelineOut, RunPage
from testledger.services.log_excerpts import DEFAULT_EXCERPT_BYTES, LogExcerpt
from testledger.services.signing import LogSignOut
from testledger.services.tokens import Principal

F = TypeVar("F", bound=Callable[..., Any])

INSTRUCTIONS = """\
testledger records test runs (executions) of pipelines and ingested CI reports. Typical use:
execute_pipeline then wait_for_execution; get_execution(only_failed=true) to find failures;
get_execution_case for one case's message and trace; get_case_log to read its log (tail, the
window around the first error, or a search) directly, no URL needed; rerun_failed_cases runs only
the failed cases again (then wait_for_execution). Case indexes are 0-based.
"""

ExecutionId = Annotated[str, Field(description="Run key such as WKS-1202-7 (the execution_id).")]
CaseIndex = Annotated[int, Field(ge=0, le=10_000_000, description="0-based case index (`index` in get_execution).")]
Workspace = Annotated[str | None, Field(description="Workspace key; default: the connection's workspace.")]

#: Longest a single wait_for_execution call blocks.
MAX_WAIT_S = 600.0
#: Where the HTTP server's authentication leaves the caller's `Principal` in the ASGI scope.
PRINCIPAL_SCOPE_KEY = "testledger.principal"


def _who(backend: Backend, ctx: Context, workspace: str | None, *, need: str = "viewer") -> Caller:
    """The caller: the token's principal over HTTP (put there by the API's authentication), else the local user."""
    request = ctx.request_context.request
    principal = backend.local
    if request is not None:
        found = getattr(request, "scope", {}).get(PRINCIPAL_SCOPE_KEY)
        if not isinstance(found, Principal):
            raise Forbidden("this connection carries no valid token (send Authorization: Bearer <token>)")
        principal = found
    return caller(principal, workspace, need=need, default_workspace=backend.default_workspace)


def _tool_errors(fn: F) -> F:
    """Domain errors (unknown key, bad filter) become tool errors the agent can read and act on."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except DomainError as exc:
                raise ToolError(str(exc)) from exc
        return wrapped_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            raise ToolError(str(exc)) from exc
    return wrapped  # type: ignore[return-value]


def build_server(backend: Backend, **http_options: Any) -> MCPServer[Any]:
    """An MCP server whose tools act through `backend` (one store, one workspace, one actor)."""
    server: MCPServer[Any] = MCPServer(
        name="testledger", version=__version__, instructions=INSTRUCTIONS, **http_options,
    )
    _execution_tools(server, backend)
    _case_tools(server, backend)
    _pipeline_tools(server, backend)
    from testledger.mcp_server import analytics_tools

    analytics_tools.register(server, backend, _who, _tool_errors)
    return server


def _execution_tools(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(description="List runs newest first, without their cases (about 1 KB each). Filters: "
                 "pipeline_key, status (PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT), result (PASSED, "
                 "FAILED, ERROR, SKIPPED), environment, date_from/date_to (ISO 8601). Pass next_cursor back as "
                 "cursor for the next page. Use it to find recent failures or a pipeline's recent history.")
    @_tool_errors
    def list_executions(
        ctx: Context, workspace: Workspace = None, pipeline_key: str | None = None, status: str | None = None,
        result: str | None = None, environment: str | None = None, date_from: datetime | None = None,
        date_to: datetime | None = None, limit: Annotated[int, Field(ge=1, le=100)] = 20, cursor: str | None = None,
    ) -> RunPage:
        return backend.list_executions(
            who=_who(backend, ctx, workspace), pipeline_key=pipeline_key, status=status, result=result,
            environment=environment, date_from=date_from, date_to=date_to, limit=limit, cursor=cursor,
        )

    @server.tool(description="One run: status, result, duration, pipeline, environment, parameters (secrets "
                 f"masked), totals and its cases (first {DEFAULT_CASES} by default; only_failed=true lists only "
                 "FAILED and ERROR cases). Each case has its index for get_execution_case and get_case_log.")
    @_tool_errors
    def get_execution(
        execution_id: ExecutionId, ctx: Context, workspace: Workspace = None,
        case_limit: Annotated[int, Field(ge=0, le=500)] = DEFAULT_CASES, only_failed: bool = False,
    ) -> ExecutionView:
        return backend.get_execution(key=execution_id, who=_who(backend, ctx, workspace), case_limit=case_limit,
                                     only_failed=only_failed)

    @server.tool(description="Start a stored pipeline now and return its execution_id at once (the run goes "
                 "on in the background). parameters are KEY: VALUE strings for the pipeline's parameters. "
                 "Follow it with wait_for_execution.")
    @_tool_errors
    def execute_pipeline(
        pipeline_key: str, ctx: Context, workspace: Workspace = None, environment: str | None = None,
        parameters: dict[str, str] | None = None,
    ) -> StartedExecution:
        who = _who(backend, ctx, workspace, need="runner")
        return backend.execute(pipeline_key=pipeline_key, who=who, environment=environment,
                               parameters=parameters or {})

    @server.tool(description="Rerun the failed cases of a finished run and return the new execution_id at "
                 "once: a new run of the same pipeline version, environment and parameters that executes only "
                 "the cases that FAILED, ERROR or never ran (plus the cases they need), linked to the original "
                 "by rerun_of; the original is not changed. Use it after fixing a failure, or to tell a flaky "
                 "failure from a real one. The note lists the cases and why each runs. Errors say when the run "
                 "is still running, nothing failed, it was ingested (nothing to execute), or a secret parameter "
                 "must be passed again in parameters. Follow it with wait_for_execution.")
    @_tool_errors
    def rerun_failed_cases(
        execution_id: ExecutionId, ctx: Context, workspace: Workspace = None,
        parameters: Annotated[dict[str, str] | None, Field(
            description="Only secret parameters the original run was given (never stored).")] = None,
    ) -> StartedExecution:
        who = _who(backend, ctx, workspace, need="runner")
        return backend.rerun_failed(key=execution_id, who=who, parameters=parameters or {})

    @server.tool(description="Block until a run ends (or timeout_s passes, at most 600), sending progress "
                 "notifications as cases finish, then return the run with its failed cases. Use it instead of "
                 "polling get_execution. Check `status`: still RUNNING means the timeout passed.")
    @_tool_errors
    async def wait_for_execution(
        execution_id: ExecutionId, ctx: Context, workspace: Workspace = None,
        timeout_s: Annotated[float, Field(gt=0, le=MAX_WAIT_S)] = 300.0,
    ) -> ExecutionView:
        who = _who(backend, ctx, workspace)
        deadline = time.monotonic() + timeout_s
        done = -1
        while True:
            view = await anyio.to_thread.run_sync(functools.partial(
                backend.get_execution, key=execution_id, who=who, case_limit=DEFAULT_CASES,
                only_failed=True))
            finished = view.status.lower() in lifecycle.TERMINAL
            if view.totals.tests != done:
                done = view.totals.tests
                await ctx.report_progress(done, message=f"{execution_id}: {done} cases finished, "
                                          f"{view.totals.failed + view.totals.errors} failed")
            if finished or time.monotonic() >= deadline:
                if not finished:
                    view.note = f"still {view.status} after {timeout_s:g}s; call wait_for_execution again"
                return view
            await anyio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    @server.tool(description="Ask a run's true state: a run whose executor died or went silent is ended as "
                 "ERROR (its unfinished cases marked infrastructure). Use it for a run that looks stuck.")
    @_tool_errors
    def refresh_execution(execution_id: ExecutionId, ctx: Context, workspace: Workspace = None) -> ExecutionOut:
        return backend.refresh(key=execution_id, who=_who(backend, ctx, workspace, need="runner"))

    @server.tool(description="Cancel a run: finished case results are kept, the run ends CANCELLED.")
    @_tool_errors
    def cancel_execution(execution_id: ExecutionId, ctx: Context, workspace: Workspace = None) -> ExecutionOut:
        return backend.cancel(key=execution_id, who=_who(backend, ctx, workspace, need="runner"))


def _case_tools(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(description="One case of a run in full: status, failure category, error message, stack "
                 "trace, attempts (retries), attachments, runtime id, and the stored stdout/stderr (each text "
                 "field cut to its last 4,000 characters; get_case_log reads the whole log).")
    @_tool_errors
    def get_execution_case(
        execution_id: ExecutionId, case_index: CaseIndex, ctx: Context, workspace: Workspace = None,
    ) -> CaseView:
        return backend.get_case(key=execution_id, index=case_index, who=_who(backend, ctx, workspace))

    @server.tool(description="Read a case's log (stdout and stderr, secrets masked) directly, bounded to "
                 "max_bytes (default 16 KB, at most 256 KB). mode: tail (the end), error (the window around "
                 "the first error-like line), search (lines containing query, case-insensitive, up to 50), "
                 "page (from byte offset). The answer gives total_bytes, start/end offsets and a note on "
                 "how to read more. Works for executed cases and for ingested results' stored output.")
    @_tool_errors
    def get_case_log(
        execution_id: ExecutionId, case_index: CaseIndex, ctx: Context, workspace: Workspace = None,
        mode: Literal["tail", "error", "search", "page"] = "tail", query: str | None = None,
        offset: Annotated[int, Field(ge=0)] = 0,
        max_bytes: Annotated[int, Field(ge=1, le=256 * 1024)] = DEFAULT_EXCERPT_BYTES,
    ) -> LogExcerpt:
        who = _who(backend, ctx, workspace)
        return backend.case_log(key=execution_id, index=case_index, who=who, mode=mode, query=query,
                                offset=offset, max_bytes=max_bytes)

    @server.tool(description="A short-lived signed URL for a case's whole log, for a client that downloads it "
                 "itself: sign (the X-Sign header), logUrl, operatorId (the X-Operator-Id header) and a ready "
                 "curlCommand. To read the log here, get_case_log is simpler (one call, bounded).")
    @_tool_errors
    def log_sign(
        execution_id: ExecutionId, case_index: CaseIndex, ctx: Context, workspace: Workspace = None,
    ) -> LogSignOut:
        return backend.log_sign(key=execution_id, index=case_index, who=_who(backend, ctx, workspace),
                                base_url=_base_url(ctx))


def _base_url(ctx: Context) -> str | None:
    """The server's own URL when the call came over HTTP (stdio has none)."""
    request = ctx.request_context.request
    base = getattr(request, "base_url", None)
    return str(base) if base is not None else None


def _pipeline_tools(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(description="A pipeline's current version: its cases (index, key, name, kind), default "
                 "environment, parameters (secret values masked), time limit, parallelism, retries.")
    @_tool_errors
    def get_pipeline(pipeline_key: str, ctx: Context, workspace: Workspace = None) -> PipelineOut:
        return backend.get_pipeline(key=pipeline_key, who=_who(backend, ctx, workspace))

    @server.tool(description="All pipelines of the workspace (without their cases), to find a pipeline_key.")
    @_tool_errors
    def list_pipelines(ctx: Context, workspace: Workspace = None) -> list[PipelineOut]:
        return backend.list_pipelines(who=_who(backend, ctx, workspace))
