"""Signed log URLs: a short-lived JWT bound to one run, one case and one operator, verified on every read.

The key lives outside the store (a 0600 file under TESTLEDGER_HOME, or the `signing_key` setting), so a
copy of the database cannot mint URLs.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shlex
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from testledger.db.types import utcnow
from testledger.errors import Invalid

AUDIENCE = "testledger:case-log"
ALGORITHM = "HS256"
KEY_FILE = "signing.key"


class LogSignatureRejected(Invalid):
    """A log signature that is missing, expired, altered, or presented by another operator."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    secret: bytes

    @property
    def key_id(self) -> str:
        # Names the key without revealing it, so a rotated key rejects old URLs by id.
        return hashlib.sha256(b"testledger-kid:" + self.secret).hexdigest()[:16]


def load_signing_key(*, home: Path, configured: str | None) -> SigningKey:
    """The configured key, else the one in `home/signing.key`, created (mode 0600) on first use."""
    if configured:
        return SigningKey(configured.encode())
    path = home / KEY_FILE
    try:
        return SigningKey(path.read_bytes().strip())
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server process created it first: use theirs
        return SigningKey(path.read_bytes().strip())
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
    return SigningKey(secret)


@dataclass(frozen=True, slots=True)
class LogGrant:
    """What a valid signature allows: reading this case's log in this workspace."""

    workspace: str
    run_key: str
    index: int
    operator: str


def sign_case_log(key: SigningKey, *, workspace: str, run_key: str, index: int, operator: str, ttl_s: int) -> str:
    now = utcnow()
    claims = {
        "aud": AUDIENCE, "sub": operator, "ws": workspace, "run": run_key, "case": index,
        "iat": now, "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.key_id})


def verify_case_log(key: SigningKey, *, sign: str | None, operator: str | None, run_key: str, index: int) -> LogGrant:
    """The grant of a signature for exactly this run and case and operator, or `LogSignatureRejected`."""
    if not sign or not operator:
        raise LogSignatureRejected("a log URL needs the X-Sign and X-Operator-Id headers from `log-sign`")
    try:
        if jwt.get_unverified_header(sign).get("kid") != key.key_id:
            raise LogSignatureRejected("the log signature was made with another key: ask `log-sign` for a new one")
        claims = jwt.decode(sign, key.secret, algorithms=[ALGORITHM], audience=AUDIENCE,
                            options={"require": ["exp", "aud", "sub", "run", "case", "ws"]})
    except jwt.ExpiredSignatureError:
        raise LogSignatureRejected("the log signature has expired: ask `log-sign` for a new one") from None
    except jwt.PyJWTError:
        raise LogSignatureRejected("the log signature is not valid: ask `log-sign` for a new one") from None
    if claims["run"] != run_key or claims["case"] != index:
        raise LogSignatureRejected("the log signature was made for another case: ask `log-sign` for this one")
    if claims["sub"] != operator:
        raise LogSignatureRejected("the log signature belongs to another operator (X-Operator-Id)")
    return LogGrant(workspace=claims["ws"], run_key=run_key, index=index, operator=operator)


class LogSignOut(BaseModel):
    """A signed log URL, ready to fetch: the seed's `log_sign` answer."""

    sign: str = Field(description="JWT for the X-Sign header: short-lived, bound to this run, case and operator.")
    # The seed's camelCase names.
    logUrl: str = Field(description="Where the log is served (GET with the two headers; Range and ?tail= work).")
    operatorId: str = Field(description="The value of the X-Operator-Id header the signature is bound to.")
    curlCommand: str = Field(description="A ready shell command that fetches the log.")
    expiresAt: str


def sign_log_url(
    db: Session, key: SigningKey, *, workspace: str, run_key: str, index: int, operator: str, ttl_s: int,
    base_url: str,
) -> LogSignOut:
    """Sign the URL of case `index`'s log for `operator` (NotFound for a run or case the workspace lacks)."""
    from testledger.services.execution import case_log_ref

    found = case_log_ref(db, workspace=workspace, key=run_key, index=index)
    sign = sign_case_log(key, workspace=workspace, run_key=found.run_key, index=index, operator=operator, ttl_s=ttl_s)
    url = f"{base_url.rstrip('/')}/api/v1/logs/{found.run_key}/{index}"
    curl = (f"curl -s -H {shlex.quote('X-Sign: ' + sign)} -H {shlex.quote('X-Operator-Id: ' + operator)} "
            f"{shlex.quote(url)}")
    return LogSignOut(sign=sign, logUrl=url, operatorId=operator, curlCommand=curl,
                      expiresAt=(utcnow() + timedelta(seconds=ttl_s)).isoformat())
