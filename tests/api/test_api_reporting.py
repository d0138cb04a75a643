"""Reporters over HTTP: open a run, append results, finish it; a run's cases filtered and paged; export."""

from __future__ import annotations

from typing import Any

from apiclient import Api

RESULT = {"suite": "pytest", "classname": "tests.test_app", "name": "test_ok", "status": "passed",
          "duration_ms": 12.5, "stdout": "hello\n"}


def opened(api: Api, role: str = "runner") -> str:
    response = api.client.post("/api/v1/executions/open", headers=api.as_(role),
                               json={"pipeline_key": "remote", "environment": "ci", "branch": "main"})
    assert response.status_code == 201, response.text
    key: str = response.json()["execution_id"]
    return key


def append(api: Api, key: str, results: list[dict[str, Any]], role: str = "runner") -> Any:
    return api.client.post(f"/api/v1/executions/{key}/results", headers=api.as_(role), json={"results": results})


def test_a_reporter_opens_appends_and_finishes_a_run(api: Api) -> None:
    key = opened(api)
    failed = {**RESULT, "name": "test_bad", "status": "failed", "message": "assert 1 == 2",
              "error_type": "AssertionError", "attempts": [{"status": "failed", "message": "first try"}]}
    first = append(api, key, [RESULT])
    assert first.status_code == 200 and first.json()["appended"] == 1
    second = append(api, key, [failed]).json()
    assert (second["status"], second["totals"]["tests"], second["totals"]["failed"]) == ("RUNNING", 2, 1)
    case = api.client.get(f"/api/v1/executions/{key}/cases/1", headers=api.as_("viewer")).json()
    assert (case["index"], case["name"], case["status"]) == (1, "test_bad", "FAILED")
    assert [a["message"] for a in case["attempt_details"]] == ["first try", "assert 1 == 2"]
    done = api.client.post(f"/api/v1/executions/{key}/finish", headers=api.as_("runner"), json={})
    assert (done.json()["status"], done.json()["result"]) == ("COMPLETED", "FAILED")
    late = append(api, key, [RESULT])
    assert late.status_code == 409 and "already completed" in late.json()["detail"]


def test_a_viewer_cannot_report_and_another_workspace_sees_no_run(api: Api) -> None:
    assert api.client.post("/api/v1/executions/open", headers=api.as_("viewer"),
                           json={"pipeline_key": "x", "environment": "ci"}).status_code == 403
    key = opened(api)
    assert append(api, key, [RESULT], role="viewer").status_code == 403
    hidden = api.client.post(f"/api/v1/executions/{key}/results", headers=api.other_headers,
                             json={"results": [RESULT]})
    assert hidden.status_code == 404
    assert api.client.post(f"/api/v1/executions/{key}/finish", headers=api.other_headers, json={}).status_code == 404
    assert api.client.get(f"/api/v1/executions/{api.run_key}/export", headers=api.other_headers).status_code == 404


def test_appends_are_bounded(api: Api) -> None:
    key = opened(api)
    too_many = append(api, key, [RESULT] * 1001)
    assert too_many.status_code in (413, 422)
    too_large = append(api, key, [{**RESULT, "stdout": "x" * 2_000_000}])
    assert too_large.status_code == 413
    bad = append(api, key, [{**RESULT, "status": "exploded"}])
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_one_run_with_filtered_and_paged_cases_and_the_runs_show_listing(api: Api) -> None:
    url = f"/api/v1/executions/{api.run_key}"
    viewer = api.as_("viewer")
    failed = api.client.get(url, params={"case_status": "failed"}, headers=viewer).json()
    assert [c["index"] for c in failed["cases"]] == [1]
    page = api.client.get(url, params={"limit": 2}, headers=viewer).json()
    assert [c["index"] for c in page["cases"]] == [0, 1] and page["next_cursor"] == "2"
    rest = api.client.get(url, params={"limit": 2, "cursor": "2"}, headers=viewer).json()
    assert [c["index"] for c in rest["cases"]] == [2] and rest["next_cursor"] is None
    shown = api.client.get(url, params={"shown": "true"}, headers=viewer).json()
    assert shown["cases_total"] == 3 and len(shown["cases"]) == 3
    bare = api.client.get(url, params={"cases": "false"}, headers=viewer).json()
    assert bare["cases"] is None
    # "¹" and "٣" are digits to str.isdigit but not to int(): refused like any other bad cursor (found by the fuzzer).
    for cursor in ("garbage", "\u00b9", "\u0663"):
        refused = api.client.get(url, params={"limit": 2, "cursor": cursor}, headers=viewer)
        assert refused.status_code == 422 and "invalid cursor" in refused.json()["detail"], refused.text


def test_export_streams_the_report(api: Api) -> None:
    junit = api.client.get(f"/api/v1/executions/{api.run_key}/export", headers=api.as_("viewer"))
    assert junit.status_code == 200 and junit.headers["content-type"].startswith("application/xml")
    assert b'name="adds"' in junit.content and b"expected 2, got 3" in junit.content
    ctrf = api.client.get(f"/api/v1/executions/{api.run_key}/export", params={"format": "ctrf"},
                          headers=api.as_("viewer"))
    assert ctrf.json()["results"]["summary"]["tests"] == 3
    unknown = api.client.get(f"/api/v1/executions/{api.run_key}/export", params={"format": "tap"},
                             headers=api.as_("viewer"))
    assert unknown.status_code == 422 and "expected one of junit, ctrf" in unknown.json()["detail"]
