"""Running pipelines over HTTP, and reading case logs through signed URLs (ranges, tail, bad signatures)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from apiclient import Api, pipeline_text

from testledger.services import signing

YAML = {"Content-Type": "application/yaml"}


def _apply(api: Api, nap: float = 0) -> None:
    response = api.client.put("/api/v1/pipelines", content=pipeline_text(nap), headers={**api.as_("admin"), **YAML})
    assert response.status_code in (200, 201), response.text


def _sign(api: Api, key: str, index: int, role: str = "viewer") -> dict[str, str]:
    response = api.client.post(f"/api/v1/executions/{key}/cases/{index}/log-sign", headers=api.as_(role))
    assert response.status_code == 200, response.text
    signed: dict[str, str] = response.json()
    return signed


def _log(api: Api, signed: dict[str, str], **headers: str) -> Any:
    path = signed["logUrl"].split("://", 1)[1].split("/", 1)[1]
    return api.client.get("/" + path, headers={"X-Sign": signed["sign"], "X-Operator-Id": signed["operatorId"],
                                               **headers})


def test_post_execution_answers_at_once_and_runs_in_the_background(api: Api) -> None:
    _apply(api, nap=1)
    started = time.monotonic()
    response = api.client.post("/api/v1/executions", json={"pipeline_key": "echo", "environment": "local"},
                               headers=api.as_("runner"))
    assert response.status_code == 202, response.text
    assert time.monotonic() - started < 1.0
    key = response.json()["execution_id"]
    assert response.json()["trigger"] == "api" and response.json()["triggered_by"] == "runner@example.com"
    run = api.wait(key)
    assert (run["status"], run["result"]) == ("COMPLETED", "PASSED")
    signed = _sign(api, key, 0)
    assert signed["operatorId"] == "viewer@example.com"
    assert "curl -s -H" in signed["curlCommand"] and signed["logUrl"].endswith(f"/api/v1/logs/{key}/0")
    whole = _log(api, signed)
    assert whole.status_code == 200 and whole.text == "hello from case\nsecond line\n"
    ranged = _log(api, signed, Range="bytes=6-9")
    assert ranged.status_code == 206 and ranged.text == "from"
    assert ranged.headers["content-range"] == f"bytes 6-9/{len(whole.content)}"
    tail = api.client.get(f"/api/v1/logs/{key}/0", params={"tail": 5},
                          headers={"X-Sign": signed["sign"], "X-Operator-Id": signed["operatorId"]})
    assert tail.text == "line\n"


def test_cancel_stops_a_running_execution(api: Api) -> None:
    _apply(api, nap=30)
    key = api.client.post("/api/v1/executions", json={"pipeline_key": "echo"}, headers=api.as_("runner")).json()[
        "execution_id"]
    time.sleep(0.5)
    cancelled = api.client.post(f"/api/v1/executions/{key}/cancel", headers=api.as_("runner"))
    assert cancelled.status_code == 200
    assert api.wait(key, timeout=15)["status"] == "CANCELLED"


def test_refresh_answers_the_run(api: Api) -> None:
    response = api.client.post(f"/api/v1/executions/{api.run_key}/refresh", headers=api.as_("runner"))
    assert response.status_code == 200 and response.json()["execution_id"] == api.run_key


def test_unknown_pipeline_and_bad_parameters(api: Api) -> None:
    missing = api.client.post("/api/v1/executions", json={"pipeline_key": "nope"}, headers=api.as_("runner"))
    assert missing.status_code == 404
    too_many = {"pipeline_key": "echo", "parameters": {f"p{i}": "v" for i in range(300)}}
    bad = api.client.post("/api/v1/executions", json=too_many, headers=api.as_("runner"))
    assert bad.status_code == 422 and "at most 200 parameters" in bad.json()["detail"]
    assert "p299" not in bad.text  # the input is not echoed back


def test_ingested_case_log_is_its_stored_output(api: Api) -> None:
    signed = _sign(api, api.run_key, 1)
    log = _log(api, signed)
    assert log.status_code == 200
    assert log.text == "cart has 3 items\n--- stderr ---\nwarning: slow"
    quiet = api.client.post(f"/api/v1/executions/{api.run_key}/cases/2/log-sign", headers=api.as_("viewer"))
    assert quiet.status_code == 200
    assert _log(api, quiet.json()).status_code == 404


@pytest.mark.parametrize("fault", ["expired", "altered", "wrong_operator", "other_case", "other_key", "missing"])
def test_bad_log_signatures_are_rejected(api: Api, fault: str) -> None:
    signed = _sign(api, api.run_key, 1)
    key = api.client.app.state.ledger.signing_key  # type: ignore[attr-defined]
    headers = {"X-Sign": signed["sign"], "X-Operator-Id": signed["operatorId"]}
    path = f"/api/v1/logs/{api.run_key}/1"
    if fault == "expired":
        headers["X-Sign"] = signing.sign_case_log(key, workspace="WKS", run_key=api.run_key, index=1,
                                                  operator=signed["operatorId"], ttl_s=-5)
    elif fault == "altered":
        claims = jwt.decode(signed["sign"], options={"verify_signature": False})
        claims["case"] = 1
        claims["exp"] += 3600
        header, _body, sig = signed["sign"].split(".")
        body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
        headers["X-Sign"] = f"{header}.{body}.{sig}"
    elif fault == "wrong_operator":
        headers["X-Operator-Id"] = "mallory@example.com"
    elif fault == "other_case":
        path = f"/api/v1/logs/{api.run_key}/0"
    elif fault == "other_key":
        other = signing.SigningKey(b"another-key-of-at-least-32-bytes-long")
        headers["X-Sign"] = signing.sign_case_log(other, workspace="WKS", run_key=api.run_key, index=1,
                                                  operator=signed["operatorId"], ttl_s=60)
    else:
        del headers["X-Sign"]
    response = api.client.get(path, headers=headers)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "cart has" not in response.text
    assert _log(api, signed).status_code == 200  # the genuine one still works


def test_signing_key_file_is_private(api: Api) -> None:
    key_file = api.settings.home / signing.KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert signing.load_signing_key(home=api.settings.home, configured=None) == api.client.app.state.ledger.signing_key  # type: ignore[attr-defined]


def test_attachments_are_served_to_a_valid_signature_only_from_the_attachments_directory(api: Api) -> None:
    from sqlalchemy import update

    from testledger.db.tables import CaseResult, Run

    inside = api.settings.attachments_dir / api.run_key / "1" / "screen.png"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"\x89PNG fake")
    outside = api.settings.home / "secret.txt"
    outside.write_text("not for you")
    with api.store.write() as db:
        run_id = db.query(Run.id).filter(Run.key == api.run_key).scalar()
        db.execute(update(CaseResult).where(CaseResult.run_id == run_id, CaseResult.idx == 1)
                   .values(attachments=[str(inside), str(outside)]))
    signed = _sign(api, api.run_key, 1)
    headers = {"X-Sign": signed["sign"], "X-Operator-Id": signed["operatorId"]}
    base = f"/api/v1/logs/{api.run_key}/1/attachments"
    got = api.client.get(f"{base}/0", headers=headers)
    assert got.status_code == 200 and got.content == b"\x89PNG fake"
    assert api.client.get(f"{base}/1", headers=headers).status_code == 404  # outside the attachments directory
    assert api.client.get(f"{base}/2", headers=headers).status_code == 404
    assert api.client.get(f"{base}/0", headers={**headers, "X-Operator-Id": "mallory"}).status_code == 403


def test_a_parameter_no_process_can_be_given_is_refused_before_the_run_exists(api: Api) -> None:
    text = "key: greet\ncases:\n  - {key: hi, command: 'echo ${{ params.who }}'}\nparameters:\n  who: world\n"
    applied = api.client.put("/api/v1/pipelines", content=text, headers={**api.as_("admin"), **YAML})
    assert applied.status_code in (200, 201), applied.text
    before = api.client.get("/api/v1/executions", headers=api.as_("viewer")).json()
    bad = api.client.post("/api/v1/executions", json={"pipeline_key": "greet", "parameters": {"who": "a\u0000b"}},
                          headers=api.as_("runner"))
    assert bad.status_code in (400, 422), bad.text
    assert "parameter 'who' holds a NUL character" in bad.json()["detail"]
    assert api.client.get("/api/v1/executions", headers=api.as_("viewer")).json() == before
