"""Tokens the API has just found valid, remembered for two seconds: most requests skip the store look-up.

The bound on revocation: a token revoked through this server is refused at once (the revoke route
forgets every remembered token after its commit, and a look-up that raced with it is not
remembered); a token revoked by another process (`testledger tokens revoke`, another server worker)
or past its expiry is refused within `TOKEN_CACHE_SECONDS`. Unknown, revoked and expired tokens are
never remembered, so every refused attempt still reaches the store.
"""

from __future__ import annotations

import threading
import time

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

    def forget_all(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()
