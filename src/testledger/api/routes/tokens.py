"""/api/v1/tokens: an admin lists, creates and revokes the API tokens of their workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from testledger.api.deps import Admin, ReadDb, State, WriteDb, acting_workspace
from testledger.services import tokens

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=255, description="Who or what uses it, e.g. ci@example.com.")
    role: str = Field(description="viewer, runner or admin.", pattern="^(viewer|runner|admin)$")


@router.get("", response_model=list[tokens.TokenOut], summary="List tokens (never their secrets)")
def list_tokens(principal: Admin, state: State, db: ReadDb) -> list[tokens.TokenOut]:
    return tokens.list_tokens(db, workspace=acting_workspace(principal, None, state))


@router.post("", response_model=tokens.CreatedTokenOut, status_code=201, summary="Create a token (shown once)")
def create_token(principal: Admin, state: State, db: WriteDb, body: TokenIn) -> tokens.CreatedTokenOut:
    return tokens.create_token(db, workspace=acting_workspace(principal, None, state), role=body.role, name=body.name,
                               actor=principal.operator)


@router.delete("/{token_id}", response_model=tokens.TokenOut, summary="Revoke a token")
def revoke_token(
    principal: Admin, state: State, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> tokens.TokenOut:
    with state.store.write() as db:
        revoked = tokens.revoke_token(db, workspace=acting_workspace(principal, None, state), token_id=token_id)
    state.tokens.forget_all()  # after the commit: refused at once by this server (`api.token_cache`)
    return revoked
