"""pytest plugin: with `--testledger` (or `testledger = true` in the ini), each test's result is
written to the testledger store as it finishes, so a crashed session keeps what had finished."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from testledger.db.bulk import NewResult
    from testledger.db.engine import Store


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testledger", "record results in testledger")
    group.addoption("--testledger", action="store_true", default=None,
                    help="Record each test's result in the testledger store as it finishes.")
    group.addoption("--testledger-pipeline", default=None, help="Pipeline key (default: the rootdir's name).")
    group.addoption("--testledger-env", default=None, help="Environment (default: ci under CI, else local).")
    group.addoption("--testledger-run", default=None, help="Add to this open run instead of creating one.")
    parser.addini("testledger", type="bool", default=False, help="Enable testledger recording.")
    parser.addini("testledger_pipeline", default="", help="Pipeline key for testledger.")
    parser.addini("testledger_env", default="", help="Environment for testledger.")


def pytest_configure(config: pytest.Config) -> None:
    enabled = config.getoption("--testledger")
    if enabled is None:
        enabled = config.getini("testledger")
    # Under xdist only the controller records: it receives every worker's reports.
    if enabled and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Recorder(config), "testledger-recorder")


@dataclass
class _Pending:
    attempts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "passed"
    duration_ms: float = 0.0
    message: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    started: float = field(default_factory=time.time)


class Recorder:
    """Creates (or joins) a run at session start and writes one result per finished test."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.store: Store | None = None
        self.run_key: str | None = None
        self.workspace = ""
        self.joined = False
        self.workspace_id = 0
        self.next_idx = 0
        self.pending: dict[str, _Pending] = {}

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from testledger.db import records as runs
        from testledger.db.engine import open_store
        from testledger.provenance import actor, ci_defaults
        from testledger.settings import get_settings

        settings = get_settings()
        self.workspace = settings.workspace
        self.store = open_store()
        opt = self.config.getoption
        with self.store.write() as db:
            if opt("--testledger-run"):
                run = runs.find_run(db, workspace=self.workspace, key=opt("--testledger-run"))
                if run.status in ("completed", "cancelled", "timeout"):
                    from testledger.errors import Conflict

                    raise Conflict(
                        f"run '{run.key}' is already {run.status}; pass an open run to --testledger-run"
                    )
                self.joined = True
                if run.status == "pending":
                    runs.transition(db, workspace=self.workspace, key=run.key, to="running")
                self.next_idx = runs.next_result_index(db, run_id=run.id)
            else:
                pipeline = opt("--testledger-pipeline") or self.config.getini("testledger_pipeline") or (
                    Path(str(self.config.rootpath)).name)
                env = opt("--testledger-env") or self.config.getini("testledger_env") or (
                    "ci" if os.environ.get("CI") else "local")
                ci = ci_defaults()
                run = runs.create_run(
                    db, workspace=self.workspace, actor=actor(), environment=env,
                    allowed_environments=settings.environments, pipeline_key=pipeline, trigger="manual",
                    executor=f"pytest:{socket.gethostname()}:{os.getpid()}", revision=ci["revision"],
                    branch=ci["branch"], build_url=ci["build_url"], started=True,
                )
            self.run_key = run.key
            self.workspace_id = run.workspace_id

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        pending = self.pending.setdefault(report.nodeid, _Pending())
        if str(report.outcome) == "rerun":  # pytest-rerunfailures: this try failed and will be run again
            pending.attempts.append(_attempt(report))
            self.pending[report.nodeid] = _Pending(attempts=pending.attempts)
            return
        pending.duration_ms += report.duration * 1000
        _apply(pending, report)
        if report.when == "teardown":
            self._write(report, self.pending.pop(report.nodeid))

    def _write(self, report: pytest.TestReport, pending: _Pending) -> None:
        from testledger.db import records as runs

        assert self.store is not None and self.run_key is not None
        result = self._result(report, pending)
        with self.store.write() as db:
            run = runs.find_run(db, workspace=self.workspace, key=self.run_key)
            runs.record_results(db, run=run, results=[result])

    def _result(self, report: pytest.TestReport, pending: _Pending) -> NewResult:
        from datetime import UTC, datetime

        from testledger.caseid import case_id, reported_identity
        from testledger.db.bulk import NewCase, NewResult
        from testledger.failures import categorise

        classname, name = _junit_names(report.nodeid)
        identity = reported_identity("pytest", classname, name)
        attempts = [*pending.attempts, _attempt_of(pending)] if pending.attempts else None
        idx, self.next_idx = self.next_idx, self.next_idx + 1
        return NewResult(
            idx=idx, case=NewCase(id=case_id(self.workspace_id, identity), identity=identity, kind="reported",
                                  name=name, suite="pytest", classname=classname),
            status=pending.status, duration_ms=pending.duration_ms, message=pending.message,
            error_type=pending.error_type, stack_trace=pending.stack_trace, stdout=pending.stdout,
            stderr=pending.stderr, attempts=attempts,
            flaky=bool(attempts) and pending.status == "passed",
            failure_category=categorise(pending.status, message=pending.message, error_type=pending.error_type,
                                        stack_trace=pending.stack_trace),
            worker=getattr(report, "worker_id", None),
            started_at=datetime.fromtimestamp(pending.started, UTC), completed_at=datetime.now(UTC),
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from testledger.db import records as runs

        if self.store is None or self.run_key is None:
            return
        if not self.joined:
            with self.store.write() as db:
                runs.transition(db, workspace=self.workspace, key=self.run_key, to="completed")
        self.store.dispose()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.run_key:
            terminalreporter.write_line(f"testledger: results recorded in run {self.run_key}")


def _junit_names(nodeid: str) -> tuple[str, str]:
    """classname and name as pytest's own JUnit XML writes them, so both paths share one identity."""
    parts = nodeid.split("::")
    module = parts[0].replace("/", ".").replace("\\", ".")
    if module.endswith(".py"):
        module = module[:-3]
    return ".".join([module, *parts[1:-1]]), parts[-1]


def _apply(pending: _Pending, report: pytest.TestReport) -> None:
    """Fold one phase's report into the test's outcome: setup/teardown failures are errors."""
    if report.when == "call":
        pending.stdout = report.capstdout or None
        pending.stderr = report.capstderr or None
    if hasattr(report, "wasxfail"):
        if report.skipped:
            pending.status, pending.message = "skipped", f"xfail: {report.wasxfail}".rstrip(": ")
        return
    if report.failed:
        if pending.status in ("failed", "error"):
            return
        pending.status = "failed" if report.when == "call" else "error"
        _describe(pending, report)
    elif report.skipped and pending.status == "passed":
        pending.status = "skipped"
        longrepr = report.longrepr
        pending.message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


def _describe(pending: _Pending, report: pytest.TestReport) -> None:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1:]
    message = message if isinstance(message, str) else " ".join(message)
    head, sep, _ = message.partition(":")
    pending.error_type = head.strip() if sep and head.strip().replace(".", "").isidentifier() else None
    pending.message = message
    pending.stack_trace = report.longreprtext or None


def _attempt(report: pytest.TestReport) -> dict[str, Any]:
    p = _Pending(duration_ms=report.duration * 1000)
    p.status = "failed"
    _describe(p, report)
    return _attempt_of(p)


def _attempt_of(p: _Pending) -> dict[str, Any]:
    data = {"status": p.status, "duration_ms": p.duration_ms, "message": p.message, "error_type": p.error_type}
    return {k: v for k, v in data.items() if v is not None}
