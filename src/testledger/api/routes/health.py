"""/healthz (the process answers), /readyz (the store is reachable and current) and /metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import func, select

from testledger.api.deps import ReadDb, State
from testledger.db.engine import HEAD_REVISION
from testledger.db.tables import Run
from testledger.errors import Unavailable

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: str
    revision: str | None = None


@router.get("/healthz", response_model=HealthOut, summary="The server process answers")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/readyz", response_model=HealthOut, responses={503: {"description": "Store unreachable or behind"}},
            summary="The store is reachable and at the schema revision this version needs")
def readyz(state: State) -> HealthOut:
    try:
        revision = state.store.revision()
    except Exception as exc:  # any failure to reach the store means "not ready", with no details leaked
        raise Unavailable("the store cannot be reached") from exc
    if revision != HEAD_REVISION:
        raise Unavailable(f"the store is at revision {revision}, this server needs {HEAD_REVISION}: "
                          "run `testledger db upgrade`")
    return HealthOut(status="ready", revision=revision)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
def metrics(state: State, db: ReadDb) -> PlainTextResponse:
    rows = db.execute(select(Run.status, Run.result, func.count()).group_by(Run.status, Run.result)).all()
    counts = {(status, result or ""): count for status, result, count in rows}
    return PlainTextResponse(state.metrics.render(counts), media_type="text/plain; version=0.0.4; charset=utf-8")
