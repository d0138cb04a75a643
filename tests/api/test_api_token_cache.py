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


def test_concurrent_requests_with_an_unremembered_token_share_one_look_up(api: Api) -> None:
    """When a busy client's entry ends, its concurrent requests wait for one look-up instead of each
    asking the store (and, once a minute, each writing the last-used time)."""
    import asyncio

    import httpx
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    look_ups: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "api_tokens" in statement:
            look_ups.append(statement)

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=api.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(
                client.get("/api/v1/executions", headers=api.as_("viewer")) for _ in range(20)))
        return [answer.status_code for answer in answers]

    def kinds() -> list[str]:
        return [statement.split()[0] for statement in look_ups]

    event.listen(Engine, "before_cursor_execute", count)
    try:
        assert asyncio.run(burst()) == [200] * 20
        assert kinds() == ["SELECT", "UPDATE"]  # one look-up; the token's first use: its last-used time
        state = api.client.app.state.ledger  # type: ignore[attr-defined]
        state.tokens.forget_all()
        look_ups.clear()
        assert asyncio.run(burst()) == [200] * 20
        assert kinds() == ["SELECT"]
    finally:
        event.remove(Engine, "before_cursor_execute", count)
