"""What API tests share: the seeded store (a run, tokens of two workspaces), a pipeline, the `Api` handle."""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from servers import JUNIT as JUNIT
from testledger.db.engine import Store
from testledger.schemas import IngestOptions
from testledger.services.ingest import ingest_files
from testledger.services.tokens import create_token
from testledger.settings import Settings

PIPELINE = """\
key: echo
name: Echo
environment: local
cases:
  - key: hello
    command: echo hello from case && echo second line
  - key: nap
    command: sleep {nap}
"""


@dataclass
class Api:
    client: TestClient
    store: Store
    settings: Settings
    #: Tokens by role for workspace WKS, and one admin token of workspace OTHER.
    tokens: dict[str, str]
    other: str
    run_key: str

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @property
    def other_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.other}"}

    def wait(self, key: str, timeout: float = 30) -> dict[str, Any]:
        """The run once it has ended, as a viewer reads it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = self.client.get(f"/api/v1/executions/{key}", headers=self.as_("viewer")).json()
            if run["status"] not in ("PENDING", "RUNNING"):
                return run
            time.sleep(0.1)
        raise AssertionError(f"{key} did not finish in {timeout}s")


def make_settings(home: Path, store_url: str) -> Settings:
    return Settings(home=home, database_url=store_url, heartbeat_seconds=0.1)


def seed(store: Store, home: Path) -> tuple[dict[str, str], str, str]:
    report = home / "junit.xml"
    report.write_text(JUNIT)
    with store.write() as db:
        tokens = {role: create_token(db, workspace="WKS", role=role, name=f"{role}@example.com", actor="t").token
                  for role in ("viewer", "runner", "admin")}
        other = create_token(db, workspace="OTHER", role="admin", name="other@example.com", actor="t").token
        outcome = ingest_files(db, workspace="WKS", sources=[report], options=IngestOptions(
            actor="t", max_report_bytes=10**7, pipeline_key="unit", environment="ci",
            allowed_environments=["ci", "local"], branch="main"))
    return tokens, other, outcome.run_key




def pipeline_text(nap: float = 0) -> str:
    return textwrap.dedent(PIPELINE).format(nap=nap)
