"""Errors as application/problem+json (RFC 9457), mapped once for the whole app; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException

from testledger.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from testledger.services.signing import LogSignatureRejected

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
    409: "Conflict", 413: "Content too large", 415: "Unsupported media type", 416: "Range not satisfiable",
    422: "Invalid input", 500: "Internal server error", 503: "Unavailable",
}
#: Most specific first: a rejected log signature is an `Invalid` that answers 403.
DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (LogSignatureRejected, 403), (NotFound, 404), (Conflict, 409), (Invalid, 422), (Unavailable, 503),
)


class ProblemOut(BaseModel):
    """An error (RFC 9457): `detail` says what is wrong and how to fix it."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = Field(default=None, description="Each invalid field, for 422.")


#: Declared on every route, so clients (and schemathesis) know the shape of each error they may get.
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "description": TITLES[code],
           "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}}
    for code in (400, 401, 403, 404, 409, 413, 422, 503)
}


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers: domain errors, request validation, HTTP errors, database faults, the rest."""

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        status = next((code for kind, code in DOMAIN_STATUS if isinstance(exc, kind)), 422)
        return problem(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending input is left out: it may be large, or a secret sent in the wrong field.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()[:50]]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return problem(422, f"{where}: {first['msg']}" if where else str(first["msg"]), errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(OperationalError)
    async def store_down(_request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("store unavailable: %s", str(exc.orig).strip().splitlines()[0] if exc.orig else exc)
        return problem(503, "the store is unavailable or busy; try again shortly", headers={"Retry-After": "5"})

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # A value the store cannot hold (a NUL in text, a number out of range) that no check caught
        # sooner: the request's fault, answered as such; the server log names the route to guard.
        log.warning("%s %s: a value the store refused: %s", request.method, request.url.path,
                    str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__)
        return problem(422, "a value in the request cannot be stored (a NUL character in text, or a number "
                            "out of range); send it without")

    @app.exception_handler(IntegrityError)
    async def raced(_request: Request, _exc: IntegrityError) -> JSONResponse:
        return problem(409, "another request changed the same data at the same time; nothing was stored: retry")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal error; the server log has the details")
