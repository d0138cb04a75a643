"""POST /api/v1/executions/{key}/rerun: a finished run's failed cases run again on the server, linked to it."""

from __future__ import annotations

from pathlib import Path

from apiclient import Api

YAML = {"Content-Type": "application/yaml"}


def _pipeline(flag: Path) -> str:
    return f"""\
key: flaky
environment: local
cases:
  - key: ok
    command: echo fine
  - key: broken
    command: test -f {flag}
  - key: slow
    command: sleep 0
"""


def _start(api: Api, text: str) -> str:
    applied = api.client.put("/api/v1/pipelines", content=text, headers={**api.as_("admin"), **YAML})
    assert applied.status_code in (200, 201), applied.text
    started = api.client.post("/api/v1/executions", json={"pipeline_key": "flaky"}, headers=api.as_("runner"))
    assert started.status_code == 202, started.text
    key: str = started.json()["execution_id"]
    return key


def test_rerun_runs_only_the_failed_case_and_answers_at_once(api: Api, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    key = _start(api, _pipeline(flag))
    first = api.wait(key)
    assert first["result"] == "FAILED"

    assert api.client.post(f"/api/v1/executions/{key}/rerun", headers=api.as_("viewer")).status_code == 403
    hidden = api.client.post(f"/api/v1/executions/{key}/rerun", headers=api.other_headers)
    assert hidden.status_code == 404 and hidden.headers["content-type"] == "application/problem+json"

    response = api.client.post(f"/api/v1/executions/{key}/rerun", headers=api.as_("runner"))
    assert response.status_code == 202, response.text
    rerun = response.json()
    assert rerun["rerun_of"] == key and rerun["status"] in ("PENDING", "RUNNING")
    assert rerun["trigger"] == "api" and rerun["triggered_by"] == "runner@example.com"
    done = api.wait(rerun["execution_id"])
    assert [(c["case_key"], c["status"]) for c in done["cases"]] == [("broken", "FAILED")]
    assert done["rerun_of"] == key and done["pipeline_version"] == first["pipeline_version"]

    flag.write_text("")
    again = api.client.post(f"/api/v1/executions/{done['execution_id']}/rerun", headers=api.as_("runner")).json()
    assert api.wait(again["execution_id"])["result"] == "PASSED"
    everything = api.client.post(f"/api/v1/executions/{key}/rerun", json={"failed_only": False},
                                 headers=api.as_("runner")).json()
    assert [c["case_key"] for c in api.wait(everything["execution_id"])["cases"]] == ["ok", "broken", "slow"]

    nothing = api.client.post(f"/api/v1/executions/{again['execution_id']}/rerun", headers=api.as_("runner"))
    assert nothing.status_code == 409 and "has nothing to rerun: all 1 of its cases passed" in nothing.json()["detail"]
    assert api.wait(key) == first  # the original never changes


def test_ingested_and_running_runs_are_refused_with_what_to_do(api: Api, tmp_path: Path) -> None:
    ingested = api.client.post(f"/api/v1/executions/{api.run_key}/rerun", headers=api.as_("runner"))
    assert ingested.status_code == 422
    assert ingested.json()["detail"].startswith(f"run '{api.run_key}' was ingested from reports")

    key = _start(api, _pipeline(tmp_path / "flag").replace("sleep 0", "sleep 30"))
    running = api.client.post(f"/api/v1/executions/{key}/rerun", headers=api.as_("runner"))
    assert running.status_code == 409 and "wait for it to finish, or cancel it" in running.json()["detail"]
    assert api.client.post(f"/api/v1/executions/{key}/cancel", headers=api.as_("runner")).status_code == 200
    assert api.wait(key, timeout=15)["status"] == "CANCELLED"


def test_the_route_is_described_in_openapi(api: Api) -> None:
    operation = api.client.get("/openapi.json").json()["paths"]["/api/v1/executions/{key}/rerun"]["post"]
    assert "answers at once" in operation["summary"] and "rerun_of" in operation["description"]
