"""Whether a server is configured: both of TESTLEDGER_URL and TESTLEDGER_TOKEN, or neither."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from testledger.errors import Invalid

if TYPE_CHECKING:
    from testledger.settings import Settings


class HalfConfigured(Invalid):
    """Only one of TESTLEDGER_URL and TESTLEDGER_TOKEN is set: a usage error, not a fault of the server."""


@dataclass(frozen=True)
class RemoteConfig:
    """Where the server is and the token to show it; the token never appears in a repr or a message."""

    url: str
    token: str = field(repr=False)
    timeout_s: float = 60.0

    def __str__(self) -> str:
        return self.url


def remote_config(settings: Settings) -> RemoteConfig | None:
    """The configured server, or None for the local store; `HalfConfigured` names the missing variable."""
    url = (settings.url or "").strip()
    token = settings.token.get_secret_value().strip() if settings.token is not None else ""
    if not url and not token:
        return None
    if not token:
        raise HalfConfigured("TESTLEDGER_URL is set but TESTLEDGER_TOKEN is not: set the token too (`testledger "
                             "tokens create` on the server), or unset TESTLEDGER_URL to use the local store")
    if not url:
        raise HalfConfigured("TESTLEDGER_TOKEN is set but TESTLEDGER_URL is not: set the server's URL too, "
                             "or unset TESTLEDGER_TOKEN to use the local store")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
        raise HalfConfigured(f"TESTLEDGER_URL must be an http(s) URL like https://ledger.example.com without "
                             f"credentials, got '{_shown(url)}'")
    return RemoteConfig(url=url.rstrip("/"), token=token, timeout_s=settings.remote_timeout_seconds)


def _shown(url: str) -> str:
    """A URL as it may be printed: without user and password."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        return parts._replace(netloc=parts.hostname or "").geturl()
    return url[:200]
