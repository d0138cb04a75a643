"""Stable identities for tests across runs, and the database id derived from them."""

from __future__ import annotations

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


def case_id(workspace_id: int, identity: str) -> int:
    """A positive 63-bit id, unique per (workspace, identity) short of a 2**-63 collision."""
    digest = blake2b(f"{workspace_id}{_SEP}{identity}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
