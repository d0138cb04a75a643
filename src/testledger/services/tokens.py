"""API tokens: created once and shown once, stored as a SHA-256 digest, checked in constant time, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from testledger.db import reads
from testledger.db.records import ensure_workspace
from testledger.db.tables import ApiToken, Workspace
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid, NotFound
from testledger.textlimits import refuse_nul

#: viewer reads; runner also executes, cancels and ingests; admin also manages pipelines and tokens.
ROLES = ("viewer", "runner", "admin")
TOKEN_PREFIX = "tl_"
#: Recording every use would make each read request a write; once a minute is enough for "last used".
LAST_USED_GRANULARITY = timedelta(seconds=60)


class TokenOut(BaseModel):
    """A token as listed: never its secret."""

    id: int
    workspace: str
    name: str
    role: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    created_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class CreatedTokenOut(TokenOut):
    token: str = Field(description="The secret. Shown once; only its digest is stored.")


class Principal(BaseModel):
    """Who a valid token acts for."""

    token_id: int | None
    workspace: str | None = Field(description="The workspace it may see; None only for `serve --no-auth`.")
    role: str
    operator: str = Field(description="The name the token was created with (an e-mail, a CI job).")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"unknown role '{role}' (expected one of {', '.join(ROLES)})")
    return role


def create_token(db: Session, *, workspace: str, role: str, name: str, actor: str) -> CreatedTokenOut:
    """A new token; the returned secret is the only copy there will ever be."""
    check_role(role)
    refuse_nul(name=name)
    if not name.strip() or len(name) > 255:
        raise Invalid("a token needs a name of 1-255 characters (who or what uses it, e.g. ci@example.com)")
    ws = ensure_workspace(db, key=workspace)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(workspace_id=ws.id, name=name, prefix=secret[:10], token_hash=digest(secret), scopes=[role],
                   created_by=actor, created_at=utcnow())
    db.add(row)
    db.flush()
    return CreatedTokenOut(token=secret, **_out(row, ws.key).model_dump())


def list_tokens(db: Session, *, workspace: str) -> list[TokenOut]:
    rows = db.scalars(
        select(ApiToken).join(Workspace, Workspace.id == ApiToken.workspace_id)
        .where(Workspace.key == workspace).order_by(ApiToken.id)
    ).all()
    return [_out(r, workspace) for r in rows]


def revoke_token(db: Session, *, workspace: str, token_id: int) -> TokenOut:
    row = db.scalar(
        select(ApiToken).join(Workspace, Workspace.id == ApiToken.workspace_id)
        .where(Workspace.key == workspace, ApiToken.id == token_id)
    )
    if row is None:
        raise NotFound(f"token {token_id} not found in workspace {workspace} (`testledger tokens list` shows them)")
    if row.revoked_at is not None:
        raise Conflict(f"token {token_id} is already revoked")
    row.revoked_at = utcnow()
    db.flush()
    return _out(row, workspace)


_TOKEN, _WORKSPACE = reads.api_tokens.c, reads.workspaces.c
#: Built once: the API runs it for every request whose token it has not just seen (`api.token_cache`).
_TOKEN_QUERY = select(
    _TOKEN.id, _TOKEN.token_hash, _TOKEN.scopes, _TOKEN.name, _TOKEN.revoked_at, _TOKEN.expires_at,
    _TOKEN.last_used_at, _WORKSPACE.key,
).select_from(reads.api_tokens.join(reads.workspaces, _WORKSPACE.id == _TOKEN.workspace_id))


def authenticate(db: Session | Connection, *, token: str) -> tuple[Principal, bool] | None:
    """The principal of a valid, unrevoked token, and whether its last-used time is due for a write;
    None for anything else (the caller answers 401 without saying which check failed)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    wanted = digest(token)
    row = db.execute(_TOKEN_QUERY.where(_TOKEN.token_hash == wanted)).one_or_none()
    # The digest was looked up by index; comparing it again in constant time keeps the check itself
    # free of timing differences whatever the database does.
    if row is None or not hmac.compare_digest(row.token_hash, wanted) or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    role = (row.scopes or ["viewer"])[0]
    due = row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY
    return Principal(token_id=row.id, workspace=row.key, role=role, operator=row.name), due


def touch_token(db: Session, *, token_id: int) -> None:
    db.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))


def _out(row: ApiToken, workspace: str) -> TokenOut:
    return TokenOut(
        id=row.id, workspace=workspace, name=row.name, role=(row.scopes or ["viewer"])[0], prefix=row.prefix,
        created_at=row.created_at, created_by=row.created_by, last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
