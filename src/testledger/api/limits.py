"""Request body limits enforced before a route reads the body: by Content-Length, and while it streams in."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException

from testledger.api.metrics import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class BodyLimit:
    """Caps request bodies: `default` bytes for every route, `uploads` bytes for the paths that take files."""

    def __init__(self, app: ASGIApp, *, default: int, uploads: int, upload_paths: frozenset[str]) -> None:
        self.app, self.default, self.uploads, self.upload_paths = app, default, uploads, upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads if scope["path"] in self.upload_paths else self.default
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # a chunked body, or one longer than it said
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class NoNulInUrl:
    """Refuses a URL carrying a NUL character (`%00`): no name or filter holds one, and PostgreSQL
    cannot even compare text with it, so it is a clear 422 here instead of a database error later."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"%00" in scope.get("query_string", b"").lower()
                                        or "\x00" in scope.get("path", "")):
            await _problem(send, 422, "Invalid input",
                           "the URL holds a NUL character (%00) in a parameter; send the value without it")
            return
        await self.app(scope, receive, send)


async def _too_large(send: Send, limit: int) -> None:
    await _problem(send, 413, "Content too large", f"the request body is larger than the limit of {limit} bytes")


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
