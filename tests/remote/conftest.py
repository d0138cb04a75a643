"""A real `testledger serve` over this test's store, and the switch that points the CLI at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from remoteserver import Server, Use

from servers import JUNIT, serve, stop
from testledger.db.engine import Store
from testledger.schemas import IngestOptions
from testledger.services.ingest import ingest_files
from testledger.services.tokens import create_token
from testledger.settings import get_settings


@pytest.fixture
def server(home: Path, store: Store, store_url: str) -> Iterator[Server]:
    """The server shares the CLI's home (logs, attachments), so a command reads the same data either way."""
    report = home / "junit.xml"
    report.write_text(JUNIT)
    with store.write() as db:
        tokens = {role: create_token(db, workspace="WKS", role=role, name=f"{role}@example.com", actor="t").token
                  for role in ("viewer", "runner", "admin")}
        tokens["other"] = create_token(db, workspace="OTHER", role="admin", name="o@example.com", actor="t").token
        run_key = ingest_files(db, workspace="WKS", sources=[report], options=IngestOptions(
            actor="tester", max_report_bytes=10**7, pipeline_key="unit", environment="ci",
            allowed_environments=["ci", "local"], branch="main")).run_key
    process, url = serve(home, store_url)
    try:
        yield Server(url, tokens, run_key, report)
    finally:
        stop(process)



@pytest.fixture
def use(server: Server, monkeypatch: pytest.MonkeyPatch) -> Use:
    """`use("viewer")` points the CLI at the server with that token; `use(None)` back at the local store."""

    def switch(token: str | None, *, url: str | None = None) -> None:
        if token is None:
            monkeypatch.delenv("TESTLEDGER_URL", raising=False)
            monkeypatch.delenv("TESTLEDGER_TOKEN", raising=False)
        else:
            monkeypatch.setenv("TESTLEDGER_URL", url or server.url)
            monkeypatch.setenv("TESTLEDGER_TOKEN", server.tokens.get(token, token))
        get_settings.cache_clear()

    return switch
