"""Ingest over HTTP (multipart, gzip, many files, into an open run), body limits, pipelines, health and metrics."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

from apiclient import JUNIT, Api, pipeline_text
from fastapi.testclient import TestClient

from testledger.api import create_app

YAML = {"Content-Type": "application/yaml"}


def test_ingest_many_files_gzip_included(api: Api) -> None:
    files = [("files", ("a.xml", JUNIT.encode(), "application/xml")),
             ("files", ("b.xml.gz", gzip.compress(JUNIT.replace("app.", "lib.").encode()), "application/gzip"))]
    form = {"pipeline_key": "unit", "environment": "staging", "branch": "main", "revision": "abc",
            "label": ["team=core", "os=linux"]}
    response = api.client.post("/api/v1/ingest", data=form, files=files, headers=api.as_("runner"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["totals"]["tests"] == 6 and body["totals"]["failed"] == 2
    assert [(f["name"], f["format"], f["cases"]) for f in body["files"]] == [("a.xml", "junit", 3),
                                                                             ("b.xml.gz", "junit", 3)]
    run = api.client.get(f"/api/v1/executions/{body['execution_id']}", headers=api.as_("viewer")).json()
    assert run["labels"] == {"team": "core", "os": "linux"} and run["environment"] == "staging"
    assert run["trigger"] == "api" and run["triggered_by"] == "runner@example.com"
    metrics = api.client.get("/metrics").text
    assert "testledger_cases_ingested_total 6" in metrics


def test_ingest_rejects_a_bad_report_and_names_it_as_uploaded(api: Api) -> None:
    files = {"files": ("broken.xml", b"<testsuite><testcase", "application/xml")}
    response = api.client.post("/api/v1/ingest", data={"pipeline_key": "unit"}, files=files,
                               headers=api.as_("runner"))
    assert response.status_code == 422
    assert "broken.xml" in response.json()["detail"] and "testledger-upload" not in response.json()["detail"]


def test_ingest_needs_a_runner(api: Api) -> None:
    files = {"files": ("a.xml", JUNIT.encode(), "application/xml")}
    response = api.client.post("/api/v1/ingest", data={"pipeline_key": "unit"}, files=files,
                               headers=api.as_("viewer"))
    assert response.status_code == 403


def test_body_limits(api: Api) -> None:
    settings = api.settings.replace(api_max_body_bytes=1000, api_max_upload_bytes=5000)
    with TestClient(create_app(settings, api.store)) as client:
        headers = {"Authorization": f"Bearer {api.tokens['admin']}"}
        big = client.put("/api/v1/pipelines", content="x" * 2000, headers={**headers, **YAML})
        assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
        upload = {"files": ("a.xml", b"<!--" + b"x" * 6000 + b"-->" + JUNIT.encode(), "application/xml")}
        too_big = client.post("/api/v1/ingest", data={"pipeline_key": "unit"}, files=upload, headers=headers)
        assert too_big.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
            for _ in range(10):
                yield b"y" * 500

        streamed = client.put("/api/v1/pipelines", content=chunks(), headers={**headers, **YAML})
        assert streamed.status_code == 413
        assert client.put("/api/v1/pipelines", content=pipeline_text(), headers={**headers, **YAML}).status_code == 201


def test_pipelines_apply_version_validate_delete(api: Api) -> None:
    admin = {**api.as_("admin"), **YAML}
    first = api.client.put("/api/v1/pipelines", content=pipeline_text(), headers=admin)
    assert first.status_code == 201 and first.json()["pipeline"]["version"] == 1
    same = api.client.put("/api/v1/pipelines", content=pipeline_text(), headers=admin)
    assert same.status_code == 200 and same.json()["created"] is False
    as_json = api.client.put("/api/v1/pipelines", json={"key": "echo", "cases": [{"key": "a", "command": "true"}]},
                             headers=api.as_("admin"))
    assert as_json.status_code == 201 and as_json.json()["pipeline"]["version"] == 2
    listed = api.client.get("/api/v1/pipelines", headers=api.as_("viewer")).json()
    assert {p["key"] for p in listed} == {"echo", "unit"}
    shown = api.client.get("/api/v1/pipelines/echo", headers=api.as_("viewer")).json()
    assert [c["key"] for c in shown["cases"]] == ["a"]
    assert api.client.put("/api/v1/pipelines", content=pipeline_text(), headers={**api.as_("runner"), **YAML}
                          ).status_code == 403
    assert api.client.delete("/api/v1/pipelines/unit", headers=api.as_("admin")).status_code == 409  # has runs
    assert api.client.delete("/api/v1/pipelines/echo", headers=api.as_("admin")).status_code == 204
    assert api.client.get("/api/v1/pipelines/echo", headers=api.as_("viewer")).status_code == 404


def test_validate_reports_line_and_column(api: Api) -> None:
    document = "key: broken\ncases:\n  - key: a\n    comand: echo hi\n"
    response = api.client.post("/api/v1/pipelines/validate", content=document,
                               headers={**api.as_("viewer"), **YAML})
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert any(p["line"] == 4 and p["column"] == 5 and "comand" in p["message"] for p in body["problems"]), body
    applied = api.client.put("/api/v1/pipelines", content=document, headers={**api.as_("admin"), **YAML})
    assert applied.status_code == 422 and "<request>:4:5" in applied.json()["detail"]
    wrong_type = api.client.put("/api/v1/pipelines", content=b"key: a", headers={**api.as_("admin"),
                                                                               "Content-Type": "image/png"})
    assert wrong_type.status_code == 422 and "application/yaml" in wrong_type.json()["detail"]


def test_health_ready_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok", "revision": None}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    api.client.get("/api/v1/executions", headers=api.as_("viewer"))
    api.client.get("/api/v1/executions/NOPE-1", headers=api.as_("viewer"))
    text = api.client.get("/metrics").text
    assert 'testledger_http_requests_total{method="GET",route="/api/v1/executions",code="200"} 1' in text
    assert 'route="/api/v1/executions/{key}",code="404"} 1' in text
    assert 'testledger_http_request_duration_seconds_bucket{route="/api/v1/executions",le="+Inf"} 1' in text
    assert 'testledger_runs{status="completed",result="failed"} 1' in text


def test_readyz_fails_on_a_store_behind(api: Api) -> None:
    from sqlalchemy import text

    from testledger.db.engine import HEAD_REVISION

    with api.store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    try:
        response = api.client.get("/readyz")
        assert response.status_code == 503 and "db upgrade" in response.json()["detail"]
    finally:
        with api.store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": HEAD_REVISION})
