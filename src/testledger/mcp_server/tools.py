"""What each MCP tool does, as plain synchronous calls on the services (the server module registers them).

Every call acts for one workspace: the one a token is bound to over HTTP, or the local default over
stdio. Outputs are the same Pydantic schemas as `--json` and the REST API, trimmed where a field can
be large, with a note saying how to get the rest.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from pydantic import BaseModel, Field

from testledger.db.engine import Store
from testledger.errors import Forbidden, Invalid, NotFound
from testledger.execute.background import BackgroundRuns
from testledger.lifecycle import TRIGGER_API
from testledger.provenance import Provenance
from testledger.remote.calls import LocalOnly, ServiceCalls
from testledger.schemas import CaseDetailOut, CaseOut, ExecutionOut, PipelineOut, RunPage
from testledger.services import log_excerpts
from testledger.services.signing import LogSignOut
from testledger.services.tokens import ROLES, Principal
from testledger.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from testledger.remote.client import Remote
    from testledger.services.logs import CaseLog

T = TypeVar("T")
P = ParamSpec("P")

#: Cases returned by `get_execution` unless the agent asks for more.
DEFAULT_CASES = 50
MAX_CASES = 500
#: Longest text field (trace, stdout, stderr, message) in a case answer; the log tool reads the rest.
MAX_FIELD_CHARS = 4000


class ExecutionView(ExecutionOut):
    """An execution with at most `case_limit` of its cases, and what was left out."""

    cases_shown: int = 0
    note: str | None = Field(default=None, description="What was left out and how to get it.")


class CaseView(CaseDetailOut):
    """One case in full, long text fields cut to their last characters."""

    note: str | None = Field(default=None, description="Which fields were cut and how to read them whole.")


class StartedExecution(BaseModel):
    execution_id: str
    status: str
    pipeline_key: str | None
    environment: str
    rerun_of: str | None = None
    note: str


@dataclass(frozen=True, slots=True)
class Caller:
    """One tool call's caller: the workspace it acts for, and the user recorded on what it starts."""

    workspace: str
    actor: str


def caller(principal: Principal, requested: str | None, *, need: str, default_workspace: str) -> Caller:
    """Who a call acts for. A token is bound to its workspace (another one is not found); the local
    user (stdio, or a server started with --no-auth) may name any workspace."""
    if ROLES.index(principal.role) < ROLES.index(need):
        raise Forbidden(f"this needs the {need} role; the token has {principal.role}")
    if principal.workspace is None:
        return Caller(workspace=requested or default_workspace, actor=principal.operator)
    if requested and requested != principal.workspace:
        raise NotFound(f"workspace '{requested}' not found (this connection acts for '{principal.workspace}')")
    return Caller(workspace=principal.workspace, actor=principal.operator)


class Backend:
    """The tools' view of testledger: a store (or, over stdio, a server: `remote`) and the settings; each
    call says who it acts for. Tools obtain data through `read` and `write`, so they answer alike from both."""

    def __init__(
        self, store: Store | None, settings: Settings, *, workspace: str | None = None, actor: str | None = None,
        runs: BackgroundRuns | None = None, remote: Remote | None = None,
    ) -> None:
        self.settings, self.remote = settings, remote
        #: Tools that need the store itself work locally only; against a server they say so.
        self.store: Store = store if store is not None else cast("Store", LocalOnly(remote))
        self.default_workspace = workspace or settings.workspace
        #: The caller over stdio: the local user, who may name any workspace (a server's token decides there).
        self.local = Principal(token_id=None, workspace=None, role="admin", operator=actor or _os_user())
        self.runs = runs or (BackgroundRuns(store, settings) if store is not None else None)
        self.calls = ServiceCalls((lambda: store) if store is not None else None, remote)

    def read(self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(db, ...)` in a read of the store, or answered by the server."""
        return self.calls.read(fn, *args, **kwargs)

    def write(self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(db, ...)` in one write transaction of the store, or answered by the server."""
        return self.calls.write(fn, *args, **kwargs)

    # -- executions -------------------------------------------------------------------------------

    def list_executions(
        self, *, who: Caller, pipeline_key: str | None, status: str | None, result: str | None,
        environment: str | None, date_from: datetime | None, date_to: datetime | None, limit: int,
        cursor: str | None,
    ) -> RunPage:
        from testledger.services.runs import list_executions

        if status and result:
            raise Invalid("give status or result, not both (result=FAILED already means status COMPLETED)")
        return self.read(
            list_executions, workspace=who.workspace, pipeline_key=pipeline_key,
            status=(status or result or None), environment=environment, date_from=date_from,
            date_to=date_to, limit=limit, cursor=cursor,
        )

    def get_execution(self, *, key: str, who: Caller, case_limit: int, only_failed: bool) -> ExecutionView:
        from testledger.services.runs import get_execution

        if not 0 <= case_limit <= MAX_CASES:
            raise Invalid(f"case_limit must be between 0 and {MAX_CASES}, got {case_limit}")
        statuses = ("failed", "error") if only_failed else None
        ws = who.workspace
        execution = self._lookup(lambda: self.read(
            get_execution, workspace=ws, key=key, statuses=statuses, case_limit=case_limit + 1), ws, key)
        cases: list[CaseOut] = execution.cases or []
        view = ExecutionView(**execution.model_dump(exclude={"cases"}), cases=cases[:case_limit],
                             cases_shown=min(len(cases), case_limit))
        if len(cases) > case_limit:
            view.note = (f"only the first {case_limit} cases are shown; pass a larger case_limit (up to "
                         f"{MAX_CASES}) or only_failed=true")
        return view

    def get_case(self, *, key: str, index: int, who: Caller) -> CaseView:
        from testledger.services.runs import get_case

        ws = who.workspace
        case = self._lookup(lambda: self.read(get_case, workspace=ws, key=key, index=index), ws, key)
        view = CaseView(**case.model_dump())
        cut = [name for name in ("message", "stack_trace", "stdout", "stderr") if _cut(view, name)]
        if cut:
            view.note = (f"{', '.join(cut)} cut to their last {MAX_FIELD_CHARS} characters; read the whole "
                         "output with get_case_log")
        return view

    def refresh(self, *, key: str, who: Caller) -> ExecutionOut:
        from testledger.services.execution import refresh_run

        ws = who.workspace
        return self._lookup(lambda: self.write(
            refresh_run, workspace=ws, key=key, stale_after=self.settings.stale_after_seconds), ws, key)

    def cancel(self, *, key: str, who: Caller) -> ExecutionOut:
        from testledger.services.execution import request_cancel

        ws = who.workspace
        return self._lookup(lambda: self.write(request_cancel, workspace=ws, key=key), ws, key)

    def execute(self, *, pipeline_key: str, who: Caller, environment: str | None,
                parameters: dict[str, str]) -> StartedExecution:
        ws = who.workspace
        provenance = Provenance(actor=who.actor, trigger=TRIGGER_API)
        try:
            if self.remote is not None:  # the server runs it
                started = self.remote.start_run(workspace=ws, pipeline_key=pipeline_key, environment=environment,
                                                parameters=parameters, provenance=provenance)
            else:
                assert self.runs is not None
                started = self.runs.start(workspace=ws, pipeline_key=pipeline_key, environment=environment,
                                          parameters=parameters, provenance=provenance)
        except NotFound as exc:
            raise NotFound(f"{exc}{self._similar_pipelines(ws, pipeline_key)}") from exc
        return StartedExecution(
            execution_id=started.execution_id, status=started.status, pipeline_key=started.pipeline_key,
            environment=started.environment,
            note="the run goes on in the background; call wait_for_execution with this execution_id",
        )

    def rerun_failed(self, *, key: str, who: Caller, parameters: dict[str, str]) -> StartedExecution:
        ws = who.workspace
        if self.remote is not None:  # the server reruns it
            server = self.remote
            started = self._lookup(lambda: server.rerun(key=key, failed_only=True, parameters=parameters), ws, key)
            return StartedExecution(
                execution_id=started.execution_id, status=started.status, pipeline_key=started.pipeline_key,
                environment=started.environment, rerun_of=key,
                note=f"reruns the failed cases of {key} on the server; call wait_for_execution with this execution_id",
            )
        assert self.runs is not None
        runs = self.runs
        started, launched = self._lookup(lambda: runs.rerun(
            workspace=ws, key=key, failed_only=True, parameters=parameters,
            provenance=Provenance(actor=who.actor, trigger=TRIGGER_API)), ws, key)
        names = ", ".join(f"{c.key} ({c.reason})" for c in launched.cases[:20])
        more = f" and {len(launched.cases) - 20} more" if len(launched.cases) > 20 else ""
        return StartedExecution(
            execution_id=started.execution_id, status=started.status, pipeline_key=started.pipeline_key,
            environment=started.environment, rerun_of=key,
            note=f"reruns {len(launched.cases)} cases of {key}: {names}{more}; the run goes on in the background, "
                 "call wait_for_execution with this execution_id",
        )

    # -- pipelines --------------------------------------------------------------------------------

    def get_pipeline(self, *, key: str, who: Caller) -> PipelineOut:
        from testledger.services.pipelines import get_pipeline

        ws = who.workspace
        try:
            return self.read(get_pipeline, workspace=ws, key=key)
        except NotFound as exc:
            raise NotFound(f"{exc}{self._similar_pipelines(ws, key)}") from exc

    def list_pipelines(self, *, who: Caller) -> list[PipelineOut]:
        from testledger.services.pipelines import list_pipelines

        return [p.model_copy(update={"cases": None}) for p in self.read(list_pipelines, workspace=who.workspace)]

    # -- logs -------------------------------------------------------------------------------------

    def case_log(self, *, key: str, index: int, who: Caller, **view: Any) -> log_excerpts.LogExcerpt:
        from testledger.execute.logstore import FileLogStore
        from testledger.services.logs import find_case_log

        ws = who.workspace
        log_store = FileLogStore(self.settings.logs_dir)
        try:
            if self.remote is not None:
                found = self._lookup(lambda: self._server_log(key=key, index=index), ws, key)
            else:
                found = self._lookup(lambda: self.read(find_case_log, workspace=ws, key=key, index=index,
                                                       log_store=log_store), ws, key)
        except NotFound as exc:
            if "printed nothing" not in str(exc):
                raise
            return log_excerpts.LogExcerpt(mode=str(view.get("mode", "tail")), total_bytes=0, start=0, end=0,
                                           content="", note=str(exc))
        return log_excerpts.read_excerpt(found, log_store=log_store, **view)

    def log_sign(self, *, key: str, index: int, who: Caller, base_url: str | None) -> LogSignOut:
        from testledger.services.signing import load_signing_key, sign_log_url

        if self.remote is not None:  # signed by the server, for its own URL
            server = self.remote
            return self._lookup(lambda: server.log_sign(key=key, index=index), who.workspace, key)
        if not base_url:
            raise Invalid("log_sign needs a server (this connection reads a local store; set TESTLEDGER_URL and "
                          "TESTLEDGER_TOKEN to use one) - get_case_log reads the log directly instead")
        signing_key = load_signing_key(home=self.settings.home, configured=self.settings.signing_key)
        return self._lookup(lambda: self.read(
            sign_log_url, signing_key, workspace=who.workspace, run_key=key, index=index, operator=who.actor,
            ttl_s=self.settings.log_sign_ttl_seconds, base_url=base_url), who.workspace, key)

    def _server_log(self, *, key: str, index: int) -> CaseLog:
        """The case's log as the server serves it, at most one read (16 MiB) of it, held for the excerpt."""
        from testledger.remote.http import read_bounded
        from testledger.services.logs import MAX_READ_BYTES, CaseLog

        assert self.remote is not None
        with self.remote.read_log(key=key, index=index) as response:
            data = read_bounded(response, MAX_READ_BYTES, what=f"the log of case {index} of {key}")
        return CaseLog(run_key=key, index=index, growing=False, ref=None, stored=data)

    # -- helpers ----------------------------------------------------------------------------------

    def _lookup(self, call: Callable[[], T], workspace: str, key: str) -> T:
        """Run `call`; an unknown run key names the closest keys that exist."""
        try:
            return call()
        except NotFound as exc:
            if f"'{key}'" not in str(exc):
                raise
            raise NotFound(f"{exc}{self._similar_runs(workspace, key)}") from exc

    def _similar_runs(self, workspace: str, key: str) -> str:
        from testledger.services.runs import list_executions

        keys = [e.execution_id for e in self.read(list_executions, workspace=workspace, limit=500).items]
        return _closest(key, keys, "list_executions shows the recent runs")

    def _similar_pipelines(self, workspace: str, key: str) -> str:
        from testledger.services.pipelines import list_pipelines

        keys = [p.key for p in self.read(list_pipelines, workspace=workspace)]
        return _closest(key, keys, "list_pipelines shows them all")


def _closest(key: str, known: list[str], hint: str) -> str:
    close = difflib.get_close_matches(key, known, n=5, cutoff=0.5)
    return f"; closest: {', '.join(close)}" if close else f"; {hint}"


def _cut(view: CaseView, name: str) -> bool:
    value = getattr(view, name)
    if value is None or len(value) <= MAX_FIELD_CHARS:
        return False
    setattr(view, name, f"[… {len(value) - MAX_FIELD_CHARS} characters cut]\n{value[-MAX_FIELD_CHARS:]}")
    return True


def _os_user() -> str:
    from testledger.provenance import actor

    return actor()
