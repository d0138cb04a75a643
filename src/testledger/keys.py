"""The keys people type: one pattern each for workspace, pipeline and run keys, and what a run key names."""

from __future__ import annotations

import re
from datetime import datetime

from testledger.errors import Invalid, NotFound

WORKSPACE_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
PIPELINE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: `<WORKSPACE>-<MMDD>-<n>`, e.g. `WKS-0601-12`: the run's workspace, creation day and number.
RUN_KEY = re.compile(r"^(?P<workspace>[A-Z][A-Z0-9]{1,15})-(?P<day>\d{4})-(?P<number>\d+)$")


def validate_workspace_key(key: str) -> str:
    if not WORKSPACE_KEY.match(key):
        raise Invalid(
            f"invalid workspace key '{key}' (expected 2-16 upper-case letters or digits, starting "
            "with a letter, e.g. WKS)"
        )
    return key


def validate_pipeline_key(key: str) -> str:
    if not PIPELINE_KEY.match(key):
        raise Invalid(
            f"invalid pipeline key '{key}' (expected up to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)"
        )
    return key


def run_key(workspace: str, created_at: datetime, number: int) -> str:
    return f"{workspace}-{created_at:%m%d}-{number}"


def workspace_of(key: str) -> str:
    """The workspace a run key names; a string that is no run key names no run (`NotFound`)."""
    match = RUN_KEY.match(key)
    if match is None:
        raise NotFound(f"run '{key}' not found (run keys look like WKS-0601-12)")
    return match["workspace"]
