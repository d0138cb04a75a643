"""One connection to a testledger server: bounded reads, and its problems turned back into domain errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from testledger import __version__
from testledger.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable
from testledger.remote.config import RemoteConfig

log = logging.getLogger(__name__)

#: Largest JSON answer read (a `runs show --all` of 10,000 cases is about 5 MB).
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Largest problem document read from an error answer.
MAX_PROBLEM_BYTES = 64 * 1024


class Connection:
    """An HTTP client for one server and token. Answers are read up to a limit; a server error becomes
    the domain error the local store would have raised, with the server's own message."""

    def __init__(self, config: RemoteConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = config.url
        self._client = httpx.Client(
            base_url=config.url, timeout=config.timeout_s, follow_redirects=False, transport=transport,
            headers={"Authorization": f"Bearer {config.token}", "User-Agent": f"testledger/{__version__}"},
        )

    def __repr__(self) -> str:
        return f"Connection({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def json(self, method: str, path: str, **request: Any) -> Any:
        """The JSON body of a successful answer (None for 204), at most `MAX_JSON_BYTES` of it."""
        with self.stream(method, path, **request) as response:
            if response.status_code == 204:
                return None
            return json.loads(read_bounded(response, MAX_JSON_BYTES, what=f"{method} {path}"))

    @contextmanager
    def stream(self, method: str, path: str, *, accept: tuple[int, ...] = (), **request: Any
               ) -> Iterator[httpx.Response]:
        """A successful answer (or one with a status in `accept`) whose body is not read yet; any other
        answer raises its domain error."""
        try:
            with self._client.stream(method, path, **request) as response:
                if response.status_code >= 400 and response.status_code not in accept:
                    raise self._problem(response)
                if 300 <= response.status_code < 400:
                    raise Unavailable(f"the testledger server at {self.url} redirected to "
                                      f"'{response.headers.get('location', '?')[:200]}': set TESTLEDGER_URL to it")
                yield response
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the testledger server at {self.url} ({_reason(exc)}): check "
                              "TESTLEDGER_URL and that the server is running") from None

    def _problem(self, response: httpx.Response) -> DomainError:
        try:
            body = json.loads(read_bounded(response, MAX_PROBLEM_BYTES, what="an error answer"))
            detail = str(body.get("detail") or "") if isinstance(body, dict) else ""
        except (ValueError, DomainError, httpx.HTTPError):
            detail = ""
        status = response.status_code
        detail = detail or f"{response.reason_phrase or 'error'}"
        log.info("%s %s answered %d: %s", response.request.method, response.request.url.path, status, detail)
        if status == 401:
            return Forbidden(f"the testledger server at {self.url} refused the token: {detail} (TESTLEDGER_TOKEN)")
        if status == 403:
            return Forbidden(detail)
        if status == 404:
            return NotFound(detail)
        if status == 409:
            return Conflict(detail)
        if status in (400, 413, 415, 416, 422):
            return Invalid(detail)
        return Unavailable(f"the testledger server at {self.url} answered {status}: {detail}")


def read_bounded(response: httpx.Response, limit: int, *, what: str) -> bytes:
    """The body of `response`, refusing one larger than `limit` bytes without reading past it."""
    declared = response.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise Invalid(f"the answer to {what} is larger than {limit:,} bytes; ask for less (a smaller --limit)")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise Invalid(f"the answer to {what} is larger than {limit:,} bytes; ask for less (a smaller --limit)")
        chunks.append(chunk)
    return b"".join(chunks)


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
