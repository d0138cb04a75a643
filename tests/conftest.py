"""Shared fixtures: a real store on SQLite and on PostgreSQL for every storage test, and a CLI runner.

PostgreSQL tests run in a schema of their own per test session (and per xdist worker), so parallel
sessions never collide. With CI=true a PostgreSQL that cannot be reached fails the run, never skips.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from testledger.db.engine import Store
from testledger.settings import get_settings

pytest_plugins = ["pytester"]

PG_BASE = os.environ.get("TESTLEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = (
    "case_results", "report_files", "plans", "api_tokens", "test_runs", "pipeline_cases",
    "test_days", "failure_clusters", "case_failures", "flaky_evidence", "test_branch_states", "quarantines",
    "test_aliases", "analytics_queue",
    "pipeline_versions", "cases", "pipelines", "workspaces",
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    schema = f"tl_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_BASE} is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    Store(url, auto_migrate=True).dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "testledger.db"
    Store(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh, migrated store URL on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "home" / "testledger.db"
        path.parent.mkdir()
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.dispose()


@pytest.fixture
def home(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point TESTLEDGER_HOME and TESTLEDGER_DATABASE_URL at this test's store for CLI and executor code."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("TESTLEDGER_HOME", str(home))
    monkeypatch.setenv("TESTLEDGER_DATABASE_URL", store_url)
    monkeypatch.setenv("TESTLEDGER_ACTOR", "tester")
    # The local store, even where the developer's shell points the CLI at a server.
    monkeypatch.delenv("TESTLEDGER_URL", raising=False)
    monkeypatch.delenv("TESTLEDGER_TOKEN", raising=False)
    # Commands behave as on a developer's machine; tests of CI behaviour set these themselves.
    for var in ("CI", "BUILD_URL", "GITHUB_SHA", "GITHUB_REF_NAME", "GITHUB_HEAD_REF", "GITHUB_RUN_ID",
                "GITHUB_ACTOR", "CI_COMMIT_SHA", "CI_COMMIT_REF_NAME", "CI_JOB_URL", "GIT_COMMIT", "GIT_BRANCH"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def _invoker(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run `testledger ARGS...` in-process through the real entry point (error mapping included)."""
    from testledger.cli.main import run

    def invoke(*args: str) -> CliResult:
        # A real text layer over bytes, so commands that write binary to sys.stdout.buffer work too.
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
        err = io.StringIO()
        monkeypatch.setattr(sys, "argv", ["testledger", *args])
        code = 0
        with redirect_stdout(out), redirect_stderr(err):
            try:
                run()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out.flush()
        return CliResult(code, out.buffer.getvalue().decode(), err.getvalue())

    return invoke


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """`testledger ARGS...` against this test's store (see `home`), on each backend."""
    return _invoker(monkeypatch)


@pytest.fixture
def make_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[[], Callable[..., CliResult]]:
    """For fixtures that set up a store of their own before running commands against it."""
    return lambda: _invoker(monkeypatch)
