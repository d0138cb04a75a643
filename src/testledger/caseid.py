"""Stable identities for tests across runs, and the database id derived from them."""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b

_SEP = "\x1f"


def reported_identity(suite: str, classname: str, name: str) -> str:
    """Identity of a test learned from a report: its suite, class and name."""
    raw = f"r{_SEP}{suite}{_SEP}{classname}{_SEP}{name}".encode("utf-8", "surrogatepass")
    return blake2b(raw, digest_size=20).hexdigest()


def defined_identity(pipeline_key: str, case_key: str) -> str:
    """Identity of a case defined in a pipeline file: pipeline key and case key."""
    raw = f"d{_SEP}{pipeline_key}{_SEP}{case_key}".encode()
    return blake2b(raw, digest_size=20).hexdigest()


@lru_cache(maxsize=1024)
def _workspace_salt(workspace_id: int) -> int:
    return int.from_bytes(blake2b(f"workspace{_SEP}{workspace_id}".encode(), digest_size=8).digest(), "big")


def case_id(workspace_id: int, identity: str) -> int:
    """A positive 63-bit id, unique per (workspace, identity) short of a 2**-63 collision.

    The identity is already a uniform digest; XOR with a per-workspace salt keeps the same test in
    two workspaces apart without hashing every case twice (this runs once per ingested case).
    """
    return (int(identity[:16], 16) ^ _workspace_salt(workspace_id)) >> 1
