"""Tokens the API has just found valid, remembered for two seconds: most requests skip the store look-up.

The bound on revocation: a token revoked through this server is refused at once (the revoke route
forgets every remembered token after its commit, and a look-up that raced with it is not
remembered); a token revoked by another process (`testledger tokens revoke`, another server worker)
or past its expiry is refused within `TOKEN_CACHE_SECONDS`. Unknown, revoked and expired tokens are
never remembered, so every refused attempt still reaches the store.

Requests that find no entry at the same moment share one look-up (`check_once`): when a busy
client's entry ends, its next 50 concurrent requests made 50 look-ups, and once a minute as many
last-used writes, each in a worker thread, which stalled the requests behind them (issue 11).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

from testledger.services.tokens import Principal, digest

#: How long a valid token is taken on trust without asking the store again.
TOKEN_CACHE_SECONDS = 2.0
#: Enough for every token of a busy team; past it the cache starts over (memory stays bounded).
MAX_TOKENS = 1024


class TokenCache:
    """Valid tokens by digest (never the secret itself), each until a deadline on the monotonic clock."""

    def __init__(self, seconds: float = TOKEN_CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal]] = {}
        #: Bumped by `forget_all`: a look-up that started before it must not be remembered after it.
        self.generation = 0
        #: Look-ups under way, by generation and digest (touched on the event loop only).
        self._checks: dict[tuple[int, str], asyncio.Future[Principal | None]] = {}

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(digest(token))
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def remember(self, token: str, principal: Principal, *, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= MAX_TOKENS:
                self._entries.clear()
            self._entries[digest(token)] = (time.monotonic() + self.seconds, principal)

    async def check_once(self, token: str, check: Callable[[], Awaitable[Principal | None]]) -> Principal | None:
        """`await check()`, shared by every request for the same token while it runs. One that arrives
        after `forget_all` (a revoke) starts a look-up of its own rather than trust one begun before."""
        key = (self.generation, digest(token))
        running = self._checks.get(key)
        if running is None:
            running = self._checks[key] = asyncio.ensure_future(check())
            running.add_done_callback(lambda _done: self._checks.pop(key, None))
        # A request that goes away (its client disconnected) leaves the look-up to the others.
        return await asyncio.shield(running)

    def forget_all(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()
