"""Case logs over signed URLs: `log-sign` hands out a short-lived signature; the log URL checks it on every read."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse

from testledger.api.deps import ReadDb, State, Viewer, run_workspace
from testledger.api.routes.executions import Index, Key
from testledger.errors import Invalid
from testledger.services import logs, signing

router = APIRouter(tags=["logs"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.post("/api/v1/executions/{key}/cases/{index}/log-sign", response_model=signing.LogSignOut,
             summary="Sign a URL that serves this case's log")
def log_sign(
    principal: Viewer, state: State, db: ReadDb, request: Request, key: Key, index: Index,
) -> signing.LogSignOut:
    return signing.sign_log_url(
        db, state.signing_key, workspace=run_workspace(principal, key), run_key=key, index=index,
        operator=principal.operator, ttl_s=state.settings.log_sign_ttl_seconds, base_url=str(request.base_url),
    )


@router.get("/api/v1/logs/{key}/{index}", name="read_log", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}, 206: {"content": {"text/plain": {}}},
                       416: {"description": "The range starts past the end of the log"}},
            summary="A case's log, for the holder of a valid X-Sign (Range and ?tail= supported)")
def read_log(
    state: State, db: ReadDb, key: Key, index: Index,
    x_sign: Annotated[str | None, Header(max_length=4096)] = None,
    x_operator_id: Annotated[str | None, Header(max_length=255)] = None,
    range_: Annotated[str | None, Header(alias="Range", max_length=100)] = None,
    tail: Annotated[int | None, Query(ge=0, le=logs.MAX_READ_BYTES, description="Only the last N bytes.")] = None,
) -> Response:
    grant = signing.verify_case_log(state.signing_key, sign=x_sign, operator=x_operator_id, run_key=key, index=index)
    log = logs.find_case_log(db, workspace=grant.workspace, key=key, index=index, log_store=state.log_store)
    start, end = _range(range_) if range_ and tail is None else (0, None)
    piece = logs.read_case_log(log, log_store=state.log_store, start=start, end=end, tail=tail)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store"}
    if range_ and tail is None:
        if piece.start >= piece.total and piece.total > 0:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{piece.total}"})
        if piece.data:
            headers["Content-Range"] = f"bytes {piece.start}-{piece.end - 1}/{piece.total}"
            return Response(piece.data, status_code=206, media_type="text/plain; charset=utf-8", headers=headers)
    return Response(piece.data, media_type="text/plain; charset=utf-8", headers=headers)


@router.get("/api/v1/logs/{key}/{index}/attachments/{number}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}},
            summary="An attachment of the case, for the holder of a valid X-Sign for it")
def read_attachment(
    state: State, db: ReadDb, key: Key, index: Index, number: Annotated[int, Path(ge=0, le=10_000)],
    x_sign: Annotated[str | None, Header(max_length=4096)] = None,
    x_operator_id: Annotated[str | None, Header(max_length=255)] = None,
) -> FileResponse:
    grant = signing.verify_case_log(state.signing_key, sign=x_sign, operator=x_operator_id, run_key=key, index=index)
    path = logs.find_attachment(db, workspace=grant.workspace, key=key, index=index, number=number,
                                root=state.settings.attachments_dir)
    return FileResponse(path, filename=path.name, headers={"Cache-Control": "no-store"})


def _range(header: str) -> tuple[int, int | None]:
    """One `bytes=a-b` range (inclusive b) as start and exclusive end; a suffix `bytes=-n` is not a range here."""
    match = _RANGE.match(header.strip())
    if not match or not match[1]:
        raise Invalid(f"unsupported Range '{header[:100]}' (expected bytes=START-END or bytes=START-; "
                      "use ?tail=N for the last N bytes)")
    start = int(match[1])
    end = int(match[2]) + 1 if match[2] else None
    if end is not None and end <= start:
        raise Invalid(f"unsupported Range '{header[:100]}': END must not be before START")
    return start, end
