"""A token of one workspace sees nothing of another, on every route: 404, never 403 or data.

The table below names a check for every route the app has; a new route without one fails
`test_every_route_has_an_isolation_check`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apiclient import Api, pipeline_text

from testledger.api import create_app
from testledger.pipelinefile import parse_pipeline
from testledger.services.pipelines import apply_pipeline
from testledger.services.tokens import list_tokens

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


def _setup(api: Api) -> dict[str, Any]:
    with api.store.write() as db:
        apply_pipeline(db, workspace="WKS", document=parse_pipeline(pipeline_text()), actor="t")
    with api.store.read() as db:
        wks_token = list_tokens(db, workspace="WKS")[0].id
    run_id = api.client.get(f"/api/v1/executions/{api.run_key}", headers=api.as_("viewer")).json()["id"]
    return {"token": wks_token, "run_id": run_id}


def _hidden(response: Any) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "WKS-" not in response.json()["detail"] or "not found" in response.json()["detail"]


Check = Callable[[Api, dict[str, Any]], None]


def _list_runs(path: str) -> Check:
    def check(api: Api, ctx: dict[str, Any]) -> None:
        assert api.client.get(path, headers=api.other_headers).json()["items"] == []
        _hidden(api.client.get(path, params={"workspace": "WKS"}, headers=api.other_headers))
    return check


def _get(path: str) -> Check:
    return lambda api, ctx: _hidden(api.client.get(path.format(key=api.run_key, **ctx), headers=api.other_headers))


def _post(path: str, **kwargs: Any) -> Check:
    return lambda api, ctx: _hidden(api.client.post(path.format(key=api.run_key, **ctx), headers=api.other_headers,
                                                    **kwargs))


def _read_log(api: Api, ctx: dict[str, Any], suffix: str = "") -> None:
    # OTHER may sign only its own runs' logs; such a signature does not open a WKS run's log.
    with api.store.write() as db:
        from apiclient import JUNIT

        from testledger.schemas import IngestOptions
        from testledger.services.ingest import ingest_files

        report = api.settings.home / "other.xml"
        report.write_text(JUNIT)
        own = ingest_files(db, workspace="OTHER", sources=[report], options=IngestOptions(
            actor="t", max_report_bytes=10**7, pipeline_key="p", environment="ci", allowed_environments=["ci"])).run_key
    signed = api.client.post(f"/api/v1/executions/{own}/cases/0/log-sign", headers=api.other_headers).json()
    forged = {"X-Sign": signed["sign"], "X-Operator-Id": signed["operatorId"]}
    response = api.client.get(f"/api/v1/logs/{api.run_key}/0{suffix}", headers=forged)
    assert response.status_code == 403 and "another case" in response.json()["detail"]


def _tokens_list(api: Api, ctx: dict[str, Any]) -> None:
    listed = api.client.get("/api/v1/tokens", headers=api.other_headers).json()
    assert {t["workspace"] for t in listed} == {"OTHER"}


def _tokens_create(api: Api, ctx: dict[str, Any]) -> None:
    made = api.client.post("/api/v1/tokens", json={"name": "x", "role": "viewer"}, headers=api.other_headers).json()
    assert made["workspace"] == "OTHER"


def _pipelines_list(api: Api, ctx: dict[str, Any]) -> None:
    assert api.client.get("/api/v1/pipelines", headers=api.other_headers).json() == []
    _hidden(api.client.get("/api/v1/pipelines", params={"workspace": "WKS"}, headers=api.other_headers))


def _pipelines_apply(api: Api, ctx: dict[str, Any]) -> None:
    document = "workspace: WKS\n" + pipeline_text()
    _hidden(api.client.put("/api/v1/pipelines", content=document, headers={**api.other_headers,
                                                                           "Content-Type": "application/yaml"}))


def _pipelines_validate(api: Api, ctx: dict[str, Any]) -> None:
    # Validation reads no stored object: it answers the same for every workspace.
    response = api.client.post("/api/v1/pipelines/validate", content=pipeline_text(),
                               headers={**api.other_headers, "Content-Type": "application/yaml"})
    assert response.json()["valid"] is True


def _ingest(api: Api, ctx: dict[str, Any]) -> None:
    files = {"files": ("r.xml", b"<testsuite/>", "application/xml")}
    _hidden(api.client.post("/api/v1/ingest", data={"run": api.run_key}, files=files, headers=api.other_headers))
    _hidden(api.client.post("/api/v1/ingest", data={"workspace": "WKS", "pipeline_key": "unit"}, files=files,
                            headers=api.other_headers))


ROUTES: dict[tuple[str, str], Check] = {
    ("GET", "/api/v1/executions"): _list_runs("/api/v1/executions"),
    ("GET", "/api/v1/executions/{key}"): _get("/api/v1/executions/{key}"),
    ("GET", "/api/v1/executions/{key}/cases/{index}"): _get("/api/v1/executions/{key}/cases/0"),
    ("POST", "/api/v1/executions"): _post("/api/v1/executions", json={"pipeline_key": "echo"}),
    ("POST", "/api/v1/executions/{key}/cancel"): _post("/api/v1/executions/{key}/cancel"),
    ("POST", "/api/v1/executions/{key}/rerun"): _post("/api/v1/executions/{key}/rerun"),
    ("POST", "/api/v1/executions/{key}/refresh"): _post("/api/v1/executions/{key}/refresh"),
    ("POST", "/api/v1/executions/{key}/cases/{index}/log-sign"): _post("/api/v1/executions/{key}/cases/0/log-sign"),
    ("POST", "/api/v1/executions/open"): _post("/api/v1/executions/open", json={
        "pipeline_key": "unit", "environment": "ci", "workspace": "WKS"}),
    ("POST", "/api/v1/executions/{key}/results"): _post("/api/v1/executions/{key}/results", json={"results": [
        {"suite": "pytest", "classname": "a", "name": "b", "status": "passed"}]}),
    ("POST", "/api/v1/executions/{key}/finish"): _post("/api/v1/executions/{key}/finish", json={}),
    ("GET", "/api/v1/executions/{key}/export"): _get("/api/v1/executions/{key}/export"),
    ("GET", "/api/v1/logs/{key}/{index}"): _read_log,
    ("GET", "/api/v1/logs/{key}/{index}/attachments/{number}"): lambda api, ctx: _read_log(api, ctx, "/attachments/0"),
    ("GET", "/api/v1/test-runs"): _list_runs("/api/v1/test-runs"),
    ("GET", "/api/v1/test-runs/{run_id}"): _get("/api/v1/test-runs/{run_id}"),
    ("POST", "/api/v1/ingest"): _ingest,
    ("GET", "/api/v1/pipelines"): _pipelines_list,
    ("PUT", "/api/v1/pipelines"): _pipelines_apply,
    ("POST", "/api/v1/pipelines/validate"): _pipelines_validate,
    ("GET", "/api/v1/pipelines/{key}"): lambda api, ctx: _hidden(
        api.client.get("/api/v1/pipelines/echo", headers=api.other_headers)),
    ("DELETE", "/api/v1/pipelines/{key}"): lambda api, ctx: _hidden(
        api.client.delete("/api/v1/pipelines/echo", headers=api.other_headers)),
    ("GET", "/api/v1/tokens"): _tokens_list,
    ("POST", "/api/v1/tokens"): _tokens_create,
    ("DELETE", "/api/v1/tokens/{token_id}"): lambda api, ctx: _hidden(
        api.client.delete(f"/api/v1/tokens/{ctx['token']}", headers=api.other_headers)),
}


def _analytics(path: str) -> Check:
    """Answers for the token's own workspace only: naming another is not found."""
    return lambda api, ctx: _hidden(api.client.get(path, params={"workspace": "WKS", "test": "app.Login::ok"},
                                                   headers=api.other_headers))


def _cluster_category(api: Api, ctx: dict[str, Any]) -> None:
    own = api.client.get("/api/v1/analytics/clusters", headers=api.as_("viewer")).json()["clusters"]
    cluster = own[0]["id"] if own else 1
    _hidden(api.client.put(f"/api/v1/analytics/clusters/{cluster}/category", json={"category": "timeout"},
                           headers=api.other_headers))


def _quarantine_add(api: Api, ctx: dict[str, Any]) -> None:
    body = {"test": "app.Login::ok", "owner": "qa@example.com", "reason": "flaky"}
    _hidden(api.client.post("/api/v1/analytics/quarantines", json=body, headers=api.other_headers))


def _quarantine_remove(api: Api, ctx: dict[str, Any]) -> None:
    _hidden(api.client.delete("/api/v1/analytics/quarantines", params={"test": "app.Login::ok", "workspace": "WKS"},
                              headers=api.other_headers))


ROUTES.update({
    ("GET", "/api/v1/analytics/health"): _analytics("/api/v1/analytics/health"),
    ("GET", "/api/v1/analytics/flaky"): _analytics("/api/v1/analytics/flaky"),
    ("GET", "/api/v1/analytics/slow"): _analytics("/api/v1/analytics/slow"),
    ("GET", "/api/v1/analytics/clusters"): _analytics("/api/v1/analytics/clusters"),
    ("GET", "/api/v1/analytics/tests/history"): _analytics("/api/v1/analytics/tests/history"),
    ("GET", "/api/v1/analytics/quarantines"): _analytics("/api/v1/analytics/quarantines"),
    ("GET", "/api/v1/analytics/compare/{key}"): _get("/api/v1/analytics/compare/{key}"),
    ("PUT", "/api/v1/analytics/clusters/{cluster}/category"): _cluster_category,
    ("POST", "/api/v1/analytics/quarantines"): _quarantine_add,
    ("DELETE", "/api/v1/analytics/quarantines"): _quarantine_remove,
})


def app_routes(home: Path) -> set[tuple[str, str]]:
    from testledger.settings import Settings

    paths = create_app(Settings(home=home, database_url="sqlite://")).openapi()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def test_every_route_has_an_isolation_check(tmp_path: Path) -> None:
    assert app_routes(tmp_path) - PUBLIC == set(ROUTES)


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_other_workspace_sees_nothing(api: Api, route: tuple[str, str]) -> None:
    ctx = _setup(api)
    ROUTES[route](api, ctx)
    # ...and the objects are still there for their own workspace.
    assert api.client.get(f"/api/v1/executions/{api.run_key}", headers=api.as_("viewer")).status_code == 200
