"""The analytics questions over HTTP: the same services and schemas as `testledger health`, `flaky`, `quarantine`."""

from __future__ import annotations

from pathlib import Path

from apiclient import Api

from testledger.schemas import IngestOptions
from testledger.services.ingest import ingest_files

SLOW_ON_STAGING = """<?xml version="1.0"?>
<testsuite name="deploy" tests="1"><testcase classname="app.Deploy" name="migrates" time="8.5"/></testsuite>
"""


def test_health_compare_and_quarantine_over_http(api: Api) -> None:
    viewer, runner = api.as_("viewer"), api.as_("runner")
    health = api.client.get("/api/v1/analytics/health", headers=viewer)
    assert health.status_code == 200
    assert [g["runs"] for g in health.json()["groups"]] == [1]

    compared = api.client.get(f"/api/v1/analytics/compare/{api.run_key}", headers=viewer)
    assert compared.status_code == 404 and "no earlier passing run" in compared.json()["detail"]

    body = {"test": "app.Cart::adds", "owner": "qa@example.com", "reason": "flaky on CI"}
    assert api.client.post("/api/v1/analytics/quarantines", json=body, headers=viewer).status_code == 403
    added = api.client.post("/api/v1/analytics/quarantines", json=body, headers=runner)
    assert added.status_code == 201 and added.json()["owner"] == "qa@example.com"
    listed = api.client.get("/api/v1/analytics/quarantines", headers=viewer).json()
    assert [q["reason"] for q in listed] == ["flaky on CI"]
    gone = api.client.delete("/api/v1/analytics/quarantines", params={"test": "app.Cart::adds"}, headers=runner)
    assert gone.status_code == 204
    assert api.client.get("/api/v1/analytics/quarantines", headers=viewer).json() == []

    history = api.client.get("/api/v1/analytics/tests/history", params={"test": "app.Cart.adds"}, headers=viewer)
    assert history.status_code == 200 and history.json()["results"][0]["status"] == "FAILED"


def test_a_nul_character_in_a_quarantine_is_a_clear_422_not_a_server_error(api: Api) -> None:
    body = {"test": "app.Cart::adds", "owner": "qa\x00@example.com", "reason": "flaky"}
    answer = api.client.post("/api/v1/analytics/quarantines", json=body, headers=api.as_("runner"))
    assert answer.status_code == 422 and "NUL character" in answer.json()["detail"]


def test_a_nul_in_a_filter_or_a_huge_cluster_id_is_a_clear_422(api: Api) -> None:
    viewer, runner = api.as_("viewer"), api.as_("runner")
    nul = api.client.get("/api/v1/analytics/slow", params={"pipeline": "a\x00b"}, headers=viewer)
    assert nul.status_code == 422 and "NUL character" in nul.json()["detail"]
    huge = api.client.put("/api/v1/analytics/clusters/4532423590/category", json={"category": "timeout"},
                          headers=runner)
    assert huge.status_code == 422


def test_slow_tests_filter_by_environment_and_branch_over_http(api: Api, tmp_path: Path) -> None:
    report = tmp_path / "deploy.xml"
    report.write_text(SLOW_ON_STAGING)
    with api.store.write() as db:
        ingest_files(db, workspace="WKS", sources=[report], options=IngestOptions(
            actor="t", max_report_bytes=10**7, pipeline_key="deploy", environment="staging",
            allowed_environments=["staging"], branch="release/2.4"))

    def slowest(**params: str) -> list[str]:
        answer = api.client.get("/api/v1/analytics/slow", params=params, headers=api.as_("viewer"))
        assert answer.status_code == 200, answer.text
        return [t["test"] for t in answer.json()["tests"]]

    assert slowest()[0] == "app.Deploy::migrates"
    assert slowest(environment="staging") == slowest(branch="release/2.4") == ["app.Deploy::migrates"]
    assert slowest(environment="ci", branch="main") == ["app.Pay::quiet", "app.Cart::adds", "app.Login::ok"]
    assert slowest(environment="production") == []
    too_long = api.client.get("/api/v1/analytics/slow", params={"branch": "b" * 256}, headers=api.as_("viewer"))
    assert too_long.status_code == 422
    described = {p["name"]: p.get("description", "") for p in
                 api.client.get("/openapi.json").json()["paths"]["/api/v1/analytics/slow"]["get"]["parameters"]}
    assert "raw results" in described["environment"] and "branch" in described["branch"]
