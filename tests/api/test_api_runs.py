"""Runs over HTTP: list with filters and keyset pages, one run, one case, the test_runs shape, tokens and roles."""

from __future__ import annotations

from typing import Any

from apiclient import Api

from testledger.services.tokens import revoke_token


def test_executions_list_in_the_runs_show_json_shape(api: Api) -> None:
    response = api.client.get("/api/v1/executions", headers=api.as_("viewer"))
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert item["execution_id"] == api.run_key
    assert item["status"] == "COMPLETED" and item["result"] == "FAILED"
    assert item["totals"] == {"tests": 3, "passed": 2, "failed": 1, "errors": 0, "skipped": 0, "flaky": 0}
    assert response.json()["next_cursor"] is None


def test_filters_and_keyset_pages(api: Api) -> None:
    from apiclient import JUNIT

    from testledger.schemas import IngestOptions
    from testledger.services.ingest import ingest_files

    report = api.settings.home / "more.xml"
    report.write_text(JUNIT.replace('name="unit"', 'name="other"'))
    with api.store.write() as db:
        for branch in ("dev", "dev", "feature"):
            ingest_files(db, workspace="WKS", sources=[report], options=IngestOptions(
            actor="t", max_report_bytes=10**7, pipeline_key="nightly", environment="ci",
            allowed_environments=["ci"], branch=branch))

    def get(**q: str | int) -> dict[str, Any]:
        answer: dict[str, Any] = api.client.get("/api/v1/executions", params=q, headers=api.as_("viewer")).json()
        return answer

    assert [i["branch"] for i in get(pipeline_key="nightly")["items"]] == ["feature", "dev", "dev"]
    assert len(get(branch="dev")["items"]) == 2
    assert len(get(result="failed")["items"]) == 4 and get(result="passed")["items"] == []
    assert get(status="running")["items"] == []
    first = get(limit=3)
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = get(limit=3, cursor=first["next_cursor"])
    keys = [i["execution_id"] for i in first["items"] + rest["items"]]
    assert len(set(keys)) == 4 and rest["next_cursor"] is None


def test_one_run_and_one_case(api: Api) -> None:
    run = api.client.get(f"/api/v1/executions/{api.run_key}", headers=api.as_("viewer")).json()
    assert [c["status"] for c in run["cases"]] == ["PASSED", "FAILED", "PASSED"]
    case = api.client.get(f"/api/v1/executions/{api.run_key}/cases/1", headers=api.as_("viewer")).json()
    assert case["message"] == "expected 2, got 3" and case["stdout"] == "cart has 3 items"
    missing = api.client.get(f"/api/v1/executions/{api.run_key}/cases/9", headers=api.as_("viewer"))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "has no case 9" in missing.json()["detail"]


def test_test_runs_record_shape(api: Api) -> None:
    page = api.client.get("/api/v1/test-runs", headers=api.as_("viewer")).json()
    [record] = page["items"]
    assert set(record) == {"id", "key", "testDefinitionId", "status", "startedAt", "completedAt", "environment",
                           "triggeredBy"}
    assert record["status"] == "failed" and record["environment"] == "ci" and record["testDefinitionId"]
    one = api.client.get(f"/api/v1/test-runs/{record['id']}", headers=api.as_("viewer")).json()
    assert one == record


def test_bad_filters_are_problems_not_crashes(api: Api) -> None:
    for query in ({"status": "weird"}, {"cursor": "not-a-cursor"}, {"limit": 0}, {"date_from": "yesterday"}):
        response = api.client.get("/api/v1/executions", params=query, headers=api.as_("viewer"))
        assert response.status_code == 422, query
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]


Params = list[tuple[str, str | int | float | bool | None]]


def test_run_list_parameters_read_as_fastapi_reads_them(api: Api) -> None:
    """The run list validates its query as one model (`api/query.py`): repeated labels all apply, a
    repeated scalar's last value counts, unknown parameters are ignored, bad ones are 422 problems."""
    from apiclient import JUNIT

    from testledger.schemas import IngestOptions
    from testledger.services.ingest import ingest_files

    report = api.settings.home / "labelled.xml"
    report.write_text(JUNIT)
    with api.store.write() as db:
        for tier in ("1", "2"):
            ingest_files(db, workspace="WKS", sources=[report], options=IngestOptions(
                actor="t", max_report_bytes=10**7, pipeline_key="unit", environment="ci",
                allowed_environments=["ci"], labels={"team": "web", "tier": tier}))

    def get(query: Params) -> Any:
        # A list, not `QueryParams`: the client merges those with its own and keeps one value a name.
        return api.client.get("/api/v1/executions", params=query, headers=api.as_("viewer"))

    def labels(query: Params) -> list[dict[str, str] | None]:
        return [item["labels"] for item in get(query).json()["items"]]

    assert labels([("label", "team=web")]) == [{"team": "web", "tier": "2"}, {"team": "web", "tier": "1"}]
    assert labels([("label", "team=web"), ("label", "tier=1")]) == [{"team": "web", "tier": "1"}]
    assert labels([("limit", "3"), ("limit", "1"), ("unknown", "x")]) == [{"team": "web", "tier": "2"}]
    assert len(labels([("date_from", "2020-01-01T00:00:00Z"), ("date_to", "2999-01-01T00:00:00+09:00")])) == 3
    assert len(labels([("date_from", "2020-01-01T00:00:00"), ("date_to", "2999-01-01")])) == 3  # UTC, as the CLI
    bad: list[tuple[Params, str]] = [
        ([("limit", "501")], "query.limit: Input should be less than or equal to 500"),
        ([("limit", "two")], "query.limit: Input should be a valid integer"),
        ([("label", "x=1") for _ in range(21)], "query.label: List should have at most 20 items"),
        ([("branch", "b" * 256)], "query.branch: String should have at most 255 characters"),
        ([("date_to", "soon")], "query.date_to: Input should be a valid datetime"),
        ([("label", "no-equals-sign")], "label expects KEY=VALUE"),
    ]
    for query, detail in bad:
        response = get(query)
        assert (response.status_code, response.headers["content-type"]) == (422, "application/problem+json"), query
        assert response.json()["detail"].startswith(detail), response.json()


def test_requests_without_a_valid_token_are_refused(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer tl_nope"}, {"Authorization": f"Basic {api.tokens['admin']}"},
                    {"Authorization": f"Bearer {api.tokens['admin']}x"}):
        response = api.client.get("/api/v1/executions", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"


def test_revoked_token_is_refused_at_once(api: Api) -> None:
    assert api.client.get("/api/v1/executions", headers=api.as_("viewer")).status_code == 200
    listed = api.client.get("/api/v1/tokens", headers=api.as_("admin")).json()
    viewer = next(t for t in listed if t["role"] == "viewer")
    assert viewer["last_used_at"] is not None and "token" not in viewer
    revoked = api.client.delete(f"/api/v1/tokens/{viewer['id']}", headers=api.as_("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert api.client.get("/api/v1/executions", headers=api.as_("viewer")).status_code == 401


def test_roles(api: Api) -> None:
    cancel = f"/api/v1/executions/{api.run_key}/cancel"
    assert api.client.post(cancel, headers=api.as_("viewer")).status_code == 403
    assert api.client.post(cancel, headers=api.as_("runner")).status_code == 409  # allowed, but already finished
    assert api.client.get("/api/v1/tokens", headers=api.as_("runner")).status_code == 403
    assert api.client.get("/api/v1/tokens", headers=api.as_("admin")).status_code == 200


def test_token_service_refuses_a_second_revoke(api: Api) -> None:
    import pytest

    from testledger.errors import Conflict
    from testledger.services.tokens import list_tokens

    with api.store.read() as db:
        [token] = list_tokens(db, workspace="OTHER")
    with api.store.write() as db:
        revoke_token(db, workspace="OTHER", token_id=token.id)
    with pytest.raises(Conflict), api.store.write() as db:
        revoke_token(db, workspace="OTHER", token_id=token.id)


def test_an_unexpected_fault_is_a_problem_without_a_trace(api: Api, monkeypatch: object) -> None:
    import pytest

    from testledger.services import runs

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom at /srv/secret/path")

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(runs, "get_case", explode)
    response = api.client.get(f"/api/v1/executions/{api.run_key}/cases/0", headers=api.as_("viewer"))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "internal error; the server log has the details"
    assert "boom" not in response.text and "Traceback" not in response.text
