"""docs/api.md names every route the app serves, with its method."""

from __future__ import annotations

from pathlib import Path

from testledger.api import create_app
from testledger.settings import Settings

DOC = Path(__file__).parents[2] / "docs" / "api.md"


def test_every_route_is_documented(tmp_path: Path) -> None:
    text = DOC.read_text()
    paths = create_app(Settings(home=tmp_path, database_url="sqlite://")).openapi()["paths"]
    missing = [f"{method.upper()} {path}" for path, operations in paths.items() for method in operations
               if f"{method.upper()} {path}`" not in text]
    assert not missing, f"routes missing from docs/api.md: {missing}"
