"""Fixtures for execution tests: pipeline files on disk, `testledger run` in-process or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from processes import ctrl_c_reaches
from testledger.settings import get_settings


@pytest.fixture
def fast(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's store with heartbeats (and cancel polls) every 0.1s."""
    monkeypatch.setenv("TESTLEDGER_HEARTBEAT_SECONDS", "0.1")
    get_settings.cache_clear()
    return home


@pytest.fixture
def sqlite_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path) -> Iterator[Path]:
    """A SQLite store for executor mechanics that do not depend on the database backend."""
    import shutil

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(sqlite_template, home / "testledger.db")
    monkeypatch.setenv("TESTLEDGER_HOME", str(home))
    monkeypatch.setenv("TESTLEDGER_DATABASE_URL", f"sqlite:///{home / 'testledger.db'}")
    monkeypatch.setenv("TESTLEDGER_HEARTBEAT_SECONDS", "0.1")
    monkeypatch.setenv("TESTLEDGER_ACTOR", "tester")
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a pipeline document (dedented) next to the test's files and return its path."""

    def write(text: str, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@dataclass
class Finished:
    code: int
    run: dict[str, Any]
    stderr: str

    def case(self, key: str) -> dict[str, Any]:
        return next(c for c in self.run["cases"] if c["case_key"] == key)


def _run_json(cli: Any) -> Callable[..., Finished]:
    def invoke(path: Path, *args: str) -> Finished:
        result = cli("run", str(path), "--json", *args)
        assert result.stdout.strip(), result.stderr
        return Finished(result.code, json.loads(result.stdout), result.stderr)

    return invoke


@pytest.fixture
def run_json(cli: Any) -> Callable[..., Finished]:
    """`testledger run FILE --json ARGS...` in-process on each backend; the printed run parsed."""
    return _run_json(cli)


@pytest.fixture
def local_cli(sqlite_only: Path, make_cli: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    """Like the `cli` fixture, on the SQLite store of `sqlite_only` only."""
    return make_cli()


@pytest.fixture
def local_run(local_cli: Any) -> Callable[..., Finished]:
    """`testledger run FILE --json ARGS...` in-process on SQLite only."""
    return _run_json(local_cli)


@pytest.fixture
def spawn() -> Callable[..., subprocess.Popen[str]]:
    """Start `testledger ARGS...` as a separate process with this test's environment."""

    def start(*args: str, stdin: int | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "testledger", *args], env=dict(os.environ), text=True,
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctrl_c_reaches,
        )

    return start


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; return its value."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def waiter() -> Callable[..., Any]:
    return wait_for
