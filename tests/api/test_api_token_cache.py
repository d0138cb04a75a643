"""The API remembers a valid token for two seconds at most; revocation through the API is immediate."""

from __future__ import annotations

from apiclient import Api

from testledger.api.token_cache import TOKEN_CACHE_SECONDS, TokenCache
from testledger.services.tokens import Principal, list_tokens, revoke_token

VIEWER = Principal(token_id=1, workspace="WKS", role="viewer", operator="v@example.com")


def test_a_token_is_remembered_until_its_deadline_only() -> None:
    assert TOKEN_CACHE_SECONDS <= 2
    cache = TokenCache()
    cache.remember("tl_a", VIEWER, generation=cache.generation)
    assert cache.get("tl_a") == VIEWER and cache.get("tl_b") is None
    expired = TokenCache(seconds=0)
    expired.remember("tl_a", VIEWER, generation=expired.generation)
    assert expired.get("tl_a") is None


def test_a_look_up_that_raced_with_a_revoke_is_not_remembered() -> None:
    cache = TokenCache()
    started = cache.generation  # a request reads the token as valid ...
    cache.forget_all()  # ... while the revoke commits and clears the cache
    cache.remember("tl_a", VIEWER, generation=started)
    assert cache.get("tl_a") is None


def test_a_token_revoked_elsewhere_is_refused_once_its_entry_is_past(api: Api) -> None:
    """Another process revokes (here: the service on its own session): the token stops working when its
    remembered entry ends, which a zero-second cache makes immediate."""
    state = api.client.app.state.ledger  # type: ignore[attr-defined]
    state.tokens = TokenCache(seconds=0)
    assert api.client.get("/api/v1/executions", headers=api.as_("viewer")).status_code == 200
    with api.store.write() as db:
        viewer = next(t for t in list_tokens(db, workspace="WKS") if t.role == "viewer")
        revoke_token(db, workspace="WKS", token_id=viewer.id)
    assert api.client.get("/api/v1/executions", headers=api.as_("viewer")).status_code == 401
