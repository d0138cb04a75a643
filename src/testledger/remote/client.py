"""The services a server answers, called like the local ones: same names, same keyword arguments, same schemas.

`Remote.call(service_function, **kwargs)` stands in for `service_function(db, **kwargs)`, so a command
obtains its data from either without knowing which. A service the API does not offer raises one
clear `Invalid` naming the command's local-only nature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from testledger.errors import Invalid
from testledger.remote.config import RemoteConfig, remote_config
from testledger.remote.http import Connection
from testledger.schemas import (
    AppliedOut,
    CaseDetailOut,
    ExecutionOut,
    IngestOptions,
    IngestOut,
    PipelineOut,
    ReportFileOut,
    RunPage,
)
from testledger.settings import Settings, UnnamedWorkspace

if TYPE_CHECKING:
    import httpx

    from testledger.pipelinefile import PipelineFile
    from testledger.provenance import Provenance
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
    from testledger.services.results import AppendedOut, ResultIn
    from testledger.services.signing import LogSignOut

P = ParamSpec("P")
T = TypeVar("T")
API = "/api/v1"
#: Upload pieces: a report is streamed, never read whole.
UPLOAD_CHUNK = 256 * 1024


def remote_from_settings(settings: Settings) -> Remote | None:
    """The server the settings name (TESTLEDGER_URL and TESTLEDGER_TOKEN), or None for the local store."""
    config = remote_config(settings)
    return Remote(config) if config is not None else None


class Remote:
    """A testledger server behind the services' own signatures (each method is the service of that name)."""

    def __init__(
        self, config: RemoteConfig, *, transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.http = Connection(config, transport=transport)

    def __repr__(self) -> str:
        return f"Remote({self.config.url!r})"

    @property
    def url(self) -> str:
        return self.config.url

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def _ws(workspace: str | None) -> str | None:
        """The workspace to send: none when nobody named one, so the token's own applies."""
        return None if isinstance(workspace, UnnamedWorkspace) else workspace

    def call(self, fn: Callable[Concatenate[Any, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(db, **kwargs)` answered by the server; a service it does not offer is one clear error."""
        name = _SERVICES.get(f"{fn.__module__}:{fn.__name__}")
        if name is None or args:
            raise Invalid(f"this command works on a local store only ({fn.__name__} is not offered by the server "
                          f"at {self.url}): unset TESTLEDGER_URL and TESTLEDGER_TOKEN to use it")
        method: Callable[..., T] = getattr(self, name)
        return method(**kwargs)

    # -- runs -------------------------------------------------------------------------------------

    def list_executions(
        self, *, workspace: str | None, pipeline_key: str | None = None, status: str | None = None,
        result: str | None = None, environment: str | None = None, branch: str | None = None,
        revision: str | None = None, trigger: str | None = None, labels: dict[str, str] | None = None,
        date_from: datetime | None = None, date_to: datetime | None = None, limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        params = _params(workspace=self._ws(workspace), pipeline_key=pipeline_key, status=status, result=result,
                         environment=environment, branch=branch, revision=revision, trigger=trigger,
                         date_from=date_from, date_to=date_to, limit=limit, cursor=cursor)
        params.extend(("label", f"{k}={v}") for k, v in (labels or {}).items())
        return RunPage.model_validate(self.http.json("GET", f"{API}/executions", params=params))

    def get_execution(
        self, *, workspace: str, key: str, with_cases: bool = True, statuses: Sequence[str] | None = None,
        case_limit: int | None = None, cursor: str | None = None,
    ) -> ExecutionOut:
        del workspace  # the key names it; the token decides what this caller sees
        params = _params(cases=with_cases, limit=case_limit, cursor=cursor)
        params.extend(("case_status", s) for s in statuses or ())
        return ExecutionOut.model_validate(self.http.json("GET", f"{API}/executions/{_seg(key)}", params=params))

    def show_execution(self, *, workspace: str, key: str, limit: int = 200) -> ExecutionOut:
        del workspace
        data = self.http.json("GET", f"{API}/executions/{_seg(key)}", params=_params(shown=True, limit=limit))
        return ExecutionOut.model_validate(data)

    def get_case(self, *, workspace: str, key: str, index: int) -> CaseDetailOut:
        del workspace
        return CaseDetailOut.model_validate(self.http.json("GET", f"{API}/executions/{_seg(key)}/cases/{index}"))

    def open_run(
        self, *, workspace: str | None, pipeline_key: str, environment: str, allowed_environments: Sequence[str],
        provenance: Provenance, labels: dict[str, str] | None = None,
    ) -> ExecutionOut:
        del allowed_environments  # the server checks against its own
        body = {"pipeline_key": pipeline_key, "workspace": self._ws(workspace), "environment": environment,
                "trigger": provenance.trigger, "revision": provenance.revision, "branch": provenance.branch,
                "build_url": provenance.build_url, "labels": labels}
        return ExecutionOut.model_validate(self.http.json("POST", f"{API}/executions/open", json=_compact(body)))

    def finish_run(
        self, *, workspace: str, key: str, status: str = "completed", result: str | None = None,
        force: bool = False, actor: str | None = None,
    ) -> ExecutionOut:
        del workspace, actor  # the server records the token's operator
        body = _compact({"status": status.lower(), "result": result and result.lower(), "force": force})
        return ExecutionOut.model_validate(self.http.json("POST", f"{API}/executions/{_seg(key)}/finish", json=body))

    def append_results(self, *, workspace: str, key: str, results: Sequence[ResultIn]) -> AppendedOut:
        from testledger.services.results import AppendedOut

        del workspace
        body = {"results": [r.model_dump(mode="json", exclude_none=True) for r in results]}
        return AppendedOut.model_validate(self.http.json("POST", f"{API}/executions/{_seg(key)}/results", json=body))

    def request_cancel(self, *, workspace: str, key: str) -> ExecutionOut:
        del workspace
        return ExecutionOut.model_validate(self.http.json("POST", f"{API}/executions/{_seg(key)}/cancel"))

    def refresh_run(self, *, workspace: str, key: str, stale_after: float) -> ExecutionOut:
        del workspace, stale_after  # the server applies its own
        return ExecutionOut.model_validate(self.http.json("POST", f"{API}/executions/{_seg(key)}/refresh"))

    def start_run(
        self, *, workspace: str | None, pipeline_key: str, environment: str | None, parameters: dict[str, str],
        provenance: Provenance,
    ) -> ExecutionOut:
        """Run a stored pipeline on the server; answers at once, while it runs there."""
        body = {"pipeline_key": pipeline_key, "workspace": self._ws(workspace), "environment": environment,
                "parameters": parameters, "revision": provenance.revision, "branch": provenance.branch,
                "build_url": provenance.build_url}
        return ExecutionOut.model_validate(self.http.json("POST", f"{API}/executions", json=_compact(body)))

    def rerun(self, *, key: str, failed_only: bool, parameters: dict[str, str]) -> ExecutionOut:
        """Rerun the failed (or all) cases of finished run `key` on the server; answers at once."""
        body = {"failed_only": failed_only, "parameters": parameters}
        return ExecutionOut.model_validate(self.http.json("POST", f"{API}/executions/{_seg(key)}/rerun", json=body))

    # -- ingest and export ------------------------------------------------------------------------

    def ingest_files(self, *, workspace: str | None, sources: Sequence[Path], options: IngestOptions) -> IngestOut:
        """Upload report files in one multipart request, each streamed from disk (gzip as it is)."""
        fields = _params(pipeline_key=options.pipeline_key, environment=options.environment,
                         revision=options.revision, branch=options.branch, build_url=options.build_url,
                         run=options.run_key, partial=options.partial, workspace=self._ws(workspace))
        fields.extend(("label", f"{k}={v}") for k, v in (options.labels or {}).items())
        from testledger.remote.upload import upload_parts

        with upload_parts(sources) as files:
            data = self.http.json("POST", f"{API}/ingest", data=_form(fields), files=files)
        return IngestOut(run_key=data["execution_id"], files=[ReportFileOut.model_validate(f) for f in data["files"]])

    def export_run(self, *, workspace: str, key: str, format: str, out: IO[bytes]) -> None:
        del workspace
        with self.http.stream("GET", f"{API}/executions/{_seg(key)}/export", params={"format": format}) as response:
            for chunk in response.iter_bytes(UPLOAD_CHUNK):
                out.write(chunk)

    # -- logs -------------------------------------------------------------------------------------

    def log_sign(self, *, key: str, index: int) -> LogSignOut:
        from testledger.services.signing import LogSignOut

        data = self.http.json("POST", f"{API}/executions/{_seg(key)}/cases/{index}/log-sign")
        return LogSignOut.model_validate(data)

    @contextmanager
    def read_log(self, *, key: str, index: int, start: int = 0, tail: int | None = None) -> Iterator[httpx.Response]:
        """A case's log from byte `start` (or its last `tail` bytes), as a response to stream from."""
        signed = self.log_sign(key=key, index=index)
        headers = {"X-Sign": signed.sign, "X-Operator-Id": signed.operatorId}
        path = f"{API}/logs/{_seg(key)}/{index}"
        params: dict[str, Any] = {}
        if tail is not None:
            params["tail"] = tail
        elif start:
            headers["Range"] = f"bytes={start}-"
        # 416: `start` is at the end of the log (nothing new yet): an empty answer.
        with self.http.stream("GET", path, headers=headers, params=params, accept=(416,)) as response:
            yield response

    # -- pipelines --------------------------------------------------------------------------------

    def apply_pipeline(
        self, *, workspace: str | None, document: PipelineFile, actor: str, directory: Path | None = None,
        with_cases: bool = True,
    ) -> AppliedOut:
        # The document names its workspace, else the token's applies; the server records the token's
        # operator, and runs the cases in its own folders. The server's answer lists the cases either way.
        del workspace, actor, directory, with_cases
        data = self.http.json("PUT", f"{API}/pipelines", content=document.source.encode(),
                              headers={"Content-Type": "application/yaml"})
        return AppliedOut.model_validate(data)

    def validate_pipeline(self, *, text: str) -> dict[str, Any]:
        """The server's verdict on a pipeline document (its environments, its limits)."""
        data: dict[str, Any] = self.http.json("POST", f"{API}/pipelines/validate", content=text.encode(),
                                              headers={"Content-Type": "application/yaml"})
        return data

    def list_pipelines(self, *, workspace: str | None) -> list[PipelineOut]:
        data = self.http.json("GET", f"{API}/pipelines", params=_params(workspace=self._ws(workspace)))
        return [PipelineOut.model_validate(item) for item in data]

    def get_pipeline(self, *, workspace: str | None, key: str) -> PipelineOut:
        del workspace
        return PipelineOut.model_validate(self.http.json("GET", f"{API}/pipelines/{_seg(key)}"))

    def delete_pipeline(self, *, workspace: str | None, key: str) -> None:
        del workspace
        self.http.json("DELETE", f"{API}/pipelines/{_seg(key)}")

    # -- analytics --------------------------------------------------------------------------------

    def pipeline_health(
        self, *, workspace: str | None, pipeline: str | None = None, environment: str | None = None,
        branch: str | None = None, days: int = 7, exclude_quarantined: bool = False,
    ) -> HealthReport:
        from testledger.services.analytics.schemas import HealthReport

        params = _params(workspace=self._ws(workspace), pipeline=pipeline, environment=environment, branch=branch,
                         days=days, exclude_quarantined=exclude_quarantined)
        return HealthReport.model_validate(self.http.json("GET", f"{API}/analytics/health", params=params))

    def flaky_tests(
        self, *, workspace: str | None, pipeline: str | None = None, branch: str | None = None, days: int = 14,
        limit: int = 50,
    ) -> FlakyReport:
        from testledger.services.analytics.schemas import FlakyReport

        params = _params(workspace=self._ws(workspace), pipeline=pipeline, branch=branch, days=days, limit=limit)
        return FlakyReport.model_validate(self.http.json("GET", f"{API}/analytics/flaky", params=params))

    def slow_tests(
        self, *, workspace: str | None, pipeline: str | None = None, environment: str | None = None,
        branch: str | None = None, days: int = 7, limit: int = 20,
    ) -> SlowReport:
        from testledger.services.analytics.schemas import SlowReport

        params = _params(workspace=self._ws(workspace), pipeline=pipeline, environment=environment, branch=branch,
                         days=days, limit=limit)
        return SlowReport.model_validate(self.http.json("GET", f"{API}/analytics/slow", params=params))

    def failure_clusters(
        self, *, workspace: str | None, pipeline: str | None = None, days: int = 7, limit: int = 50,
    ) -> ClusterReport:
        from testledger.services.analytics.schemas import ClusterReport

        params = _params(workspace=self._ws(workspace), pipeline=pipeline, days=days, limit=limit)
        return ClusterReport.model_validate(self.http.json("GET", f"{API}/analytics/clusters", params=params))

    def set_cluster_category(self, *, workspace: str | None, cluster: int, category: str | None) -> ClusterOut:
        from testledger.services.analytics.schemas import ClusterOut

        data = self.http.json("PUT", f"{API}/analytics/clusters/{int(cluster)}/category",
                              params=_params(workspace=self._ws(workspace)), json={"category": category})
        return ClusterOut.model_validate(data)

    def compare_runs(self, *, workspace: str, run: str, base: str | None = None) -> Comparison:
        from testledger.services.analytics.schemas import Comparison

        del workspace
        data = self.http.json("GET", f"{API}/analytics/compare/{_seg(run)}", params=_params(base=base))
        return Comparison.model_validate(data)

    def test_history(self, *, workspace: str | None, test: str, limit: int = 50) -> TestHistory:
        from testledger.services.analytics.schemas import TestHistory

        params = _params(workspace=self._ws(workspace), test=test, limit=limit)
        return TestHistory.model_validate(self.http.json("GET", f"{API}/analytics/tests/history", params=params))

    def list_quarantines(self, *, workspace: str | None, include_expired: bool = False) -> list[QuarantineOut]:
        from testledger.services.analytics.schemas import QuarantineOut

        data = self.http.json("GET", f"{API}/analytics/quarantines",
                              params=_params(workspace=self._ws(workspace), include_expired=include_expired))
        return [QuarantineOut.model_validate(item) for item in data]

    def add_quarantine(
        self, *, workspace: str | None, test: str, owner: str, reason: str, actor: str,
        expires_at: datetime | None = None, pipeline: str | None = None,
    ) -> QuarantineOut:
        from testledger.services.analytics.schemas import QuarantineOut

        del actor
        body = _compact({"test": test, "owner": owner, "reason": reason, "pipeline": pipeline,
                         "expires_at": expires_at.isoformat() if expires_at else None})
        data = self.http.json("POST", f"{API}/analytics/quarantines", params=_params(workspace=self._ws(workspace)),
                              json=body)
        return QuarantineOut.model_validate(data)

    def remove_quarantine(self, *, workspace: str | None, test: str) -> None:
        params = _params(workspace=self._ws(workspace), test=test)
        self.http.json("DELETE", f"{API}/analytics/quarantines", params=params)


#: Service function (module:name) -> the `Remote` method answering it.
_SERVICES = {
    f"testledger.services.{qualified}": qualified.rsplit(":", 1)[1]
    for qualified in (
        "runs:list_executions", "runs:get_execution", "runs:show_execution", "runs:get_case", "runs:open_run",
        "runs:finish_run", "results:append_results", "execution:request_cancel", "execution:refresh_run",
        "ingest:ingest_files", "export:export_run", "pipelines:apply_pipeline", "pipelines:list_pipelines",
        "pipelines:get_pipeline", "pipelines:delete_pipeline", "analytics.health:pipeline_health",
        "analytics.flaky:flaky_tests", "analytics.slow:slow_tests", "analytics.clusters:failure_clusters",
        "analytics.clusters:set_cluster_category", "analytics.compare:compare_runs",
        "analytics.history:test_history", "analytics.quarantine:list_quarantines",
        "analytics.quarantine:add_quarantine", "analytics.quarantine:remove_quarantine",
    )
}


def _params(**values: Any) -> list[tuple[str, str]]:
    """Query or form fields: None left out, booleans and times as the API reads them."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, datetime):
            value = value.isoformat()
        out.append((name, str(value)))
    return out


def _form(fields: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {}
    for name, value in fields:
        if name in form:
            previous = form[name]
            form[name] = [*(previous if isinstance(previous, list) else [previous]), value]
        else:
            form[name] = value
    return form


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _seg(value: str) -> str:
    """One path segment, escaped: a key never changes which route is called."""
    from urllib.parse import quote

    return quote(value, safe="")

