"""Fixtures for API tests: the app over each store (SQLite and PostgreSQL), driven in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apiclient import Api, make_settings, seed
from fastapi.testclient import TestClient

from testledger.api import create_app
from testledger.db.engine import Store


@pytest.fixture
def api(store: Store, store_url: str, tmp_path: Path) -> Iterator[Api]:
    home = tmp_path / "api-home"
    home.mkdir()
    settings = make_settings(home, store_url)
    tokens, other, run_key = seed(store, home)
    app = create_app(settings, store)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store, settings, tokens, other, run_key)

