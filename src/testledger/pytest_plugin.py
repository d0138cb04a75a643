"""pytest plugin: with `--testledger` (or `testledger = true` in the ini), each test's result is
written to the testledger store in timed batches (about every half second, and at session end), so
a crashed session keeps what had finished before its last flush. With TESTLEDGER_URL and
TESTLEDGER_TOKEN set, the run is opened on that server and the batches are sent to it instead."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from testledger.db.engine import Store
    from testledger.remote.client import Remote
    from testledger.services.results import ResultIn

log = logging.getLogger(__name__)
#: How long a finished result may wait in memory; one write transaction per batch, not per test.
FLUSH_SECONDS = 0.5
FLUSH_ROWS = 500
#: Most bytes of results sent to a server in one request (its default body limit is 1 MiB).
BATCH_BYTES = 768 * 1024


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


def _one_line(exc: BaseException) -> str:
    """A domain or store error as the one line a user reads."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError):
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        return f"the store is unavailable: {first}"
    return str(exc)


class Recorder:
    """Creates (or joins) a run at session start and writes finished tests' results in batches."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.store: Store | None = None
        self.server: Remote | None = None
        self.run_key: str | None = None
        self.workspace = ""
        self.joined = False
        self.pending: dict[str, _Pending] = {}
        self.problem: str | None = None  # why recording stopped, told at the end of the session
        self._buffer: list[ResultIn] = []
        self._lock = threading.Lock()  # guards the buffer
        self._writing = threading.Lock()  # one flush at a time, from the timer or the session's thread
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from sqlalchemy.exc import DBAPIError

        from testledger.errors import DomainError

        try:
            self._open_run()
        except (DomainError, DBAPIError) as exc:
            self._close()
            raise pytest.UsageError(f"testledger: {_one_line(exc)}") from exc
        self._timer = threading.Thread(target=self._flush_on_time, name="testledger-flush", daemon=True)
        self._timer.start()

    def _open_run(self) -> None:
        from testledger.db import records as runs
        from testledger.db.engine import open_store
        from testledger.db.retry import write_with_retry
        from testledger.provenance import actor, ci_defaults, default_environment
        from testledger.remote.client import remote_from_settings
        from testledger.settings import get_settings

        settings = get_settings()
        self.workspace = settings.workspace
        opt = self.config.getoption
        executor = f"pytest:{socket.gethostname()}:{os.getpid()}"

        if opt("--testledger-run"):  # a run key names its workspace
            from testledger.keys import workspace_of

            self.workspace = workspace_of(opt("--testledger-run"))
        self.joined = bool(opt("--testledger-run"))
        self.server = remote_from_settings(settings)
        if self.server is not None:
            self.run_key = self._open_on_server(self.server)
            return
        self.store = open_store()

        def open_run(db: Session) -> str:
            if opt("--testledger-run"):
                run = runs.find_run(db, workspace=self.workspace, key=opt("--testledger-run"))
                _check_open(run.key, run.status)
                if run.status == "pending":
                    runs.transition(db, workspace=self.workspace, key=run.key, to="running")
                return run.key
            ci = ci_defaults()
            run = runs.create_run(
                db, workspace=self.workspace, actor=actor(), environment=self._environment(default_environment()),
                allowed_environments=settings.environments, pipeline_key=self._pipeline(), trigger="manual",
                executor=executor, revision=ci["revision"], branch=ci["branch"], build_url=ci["build_url"],
                started=True,
            )
            return run.key

        self.run_key = write_with_retry(self.store, open_run, what="opening the testledger run")

    def _pipeline(self) -> str:
        return str(self.config.getoption("--testledger-pipeline") or self.config.getini("testledger_pipeline")
                   or Path(str(self.config.rootpath)).name)

    def _environment(self, default: str) -> str:
        return str(self.config.getoption("--testledger-env") or self.config.getini("testledger_env") or default)

    def _open_on_server(self, server: Remote) -> str:
        """Join the open run named, or open one on the server (as the token's operator)."""
        from testledger.provenance import default_environment, from_environment
        from testledger.settings import get_settings

        joined = self.config.getoption("--testledger-run")
        if joined:
            found = server.get_execution(workspace=self.workspace, key=joined, with_cases=False)
            _check_open(found.execution_id, found.status.lower())
            return found.execution_id
        opened = server.open_run(
            workspace=self.workspace, pipeline_key=self._pipeline(), environment=self._environment(
                default_environment()), allowed_environments=get_settings().environments,
            provenance=from_environment(trigger="manual"),
        )
        return opened.execution_id

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        pending = self.pending.setdefault(report.nodeid, _Pending())
        if str(report.outcome) == "rerun":  # pytest-rerunfailures: this try failed and will be run again
            pending.attempts.append(_attempt(report))
            self.pending[report.nodeid] = _Pending(attempts=pending.attempts)
            return
        pending.duration_ms += report.duration * 1000
        _apply(pending, report)
        if report.when == "teardown":
            result = self._result(report, self.pending.pop(report.nodeid))
            with self._lock:
                self._buffer.append(result)
                full = len(self._buffer) >= FLUSH_ROWS
            if full:
                self._flush()

    def _flush_on_time(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self._flush()

    def _flush(self) -> None:
        """Write the buffered results in one transaction; a store that stays busy or a run that was
        ended elsewhere (cancelled) stops recording with a note, never the test session."""
        from sqlalchemy.exc import DBAPIError

        from testledger.db.retry import write_with_retry
        from testledger.errors import DomainError
        from testledger.services.results import append_results

        with self._writing:
            with self._lock:
                results, self._buffer = self._buffer, []
            if not results or self.run_key is None or self.problem:
                return
            key = self.run_key

            def record(db: Session) -> None:
                append_results(db, workspace=self.workspace, key=key, results=results)

            try:
                if self.server is not None:
                    for batch in _batches(results):
                        self.server.append_results(workspace=self.workspace, key=key, results=batch)
                elif self.store is not None:
                    write_with_retry(self.store, record, what=f"recording results in run {key}")
            except (DomainError, DBAPIError) as exc:
                self.problem = f"{len(results)} result(s) and later ones were not recorded: {_one_line(exc)}"
                log.warning("%s", self.problem)

    def _result(self, report: pytest.TestReport, pending: _Pending) -> ResultIn:
        from datetime import UTC, datetime

        from testledger.services.results import MAX_TEXT, AttemptIn, ResultIn
        from testledger.textlimits import cap_text

        def capped(text: str | None) -> str | None:  # the store keeps at most max_output_bytes anyway
            return None if text is None else cap_text(text, MAX_TEXT)

        classname, name = _junit_names(report.nodeid)
        return ResultIn(
            suite="pytest", classname=classname, name=name, status=pending.status,
            duration_ms=pending.duration_ms, message=capped(pending.message), error_type=capped(pending.error_type),
            stack_trace=capped(pending.stack_trace), stdout=capped(pending.stdout), stderr=capped(pending.stderr),
            attempts=[AttemptIn(**{**a, "message": capped(a.get("message"))}) for a in pending.attempts] or None,
            worker=getattr(report, "worker_id", None),
            started_at=datetime.fromtimestamp(pending.started, UTC), completed_at=datetime.now(UTC),
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.run_key is None or (self.store is None and self.server is None):
            return
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        self._flush()
        if not self.joined and not self.problem:
            self._complete()
        self._close()

    def _close(self) -> None:
        if self.store is not None:
            self.store.dispose()
        if self.server is not None:
            self.server.close()
        self.store = None

    def _complete(self) -> None:
        from sqlalchemy.exc import DBAPIError

        from testledger.db import records as runs
        from testledger.db.retry import write_with_retry
        from testledger.errors import DomainError

        assert self.run_key is not None
        key = self.run_key

        def complete(db: Session) -> None:
            if runs.find_run(db, workspace=self.workspace, key=key, for_update=True).status == "running":
                runs.transition(db, workspace=self.workspace, key=key, to="completed")

        try:
            if self.server is not None:
                run = self.server.get_execution(workspace=self.workspace, key=key, with_cases=False)
                if run.status.lower() == "running":  # one cancelled meanwhile stays cancelled
                    self.server.finish_run(workspace=self.workspace, key=key)
            elif self.store is not None:
                write_with_retry(self.store, complete, what=f"completing run {key}")
        except (DomainError, DBAPIError) as exc:
            self.problem = f"run {key} was not completed: {_one_line(exc)}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.problem:
            terminalreporter.write_line(f"testledger: {self.problem}", yellow=True)
        elif self.run_key:
            terminalreporter.write_line(f"testledger: results recorded in run {self.run_key}")


def _check_open(key: str, status: str) -> None:
    if status in ("completed", "cancelled", "timeout"):
        from testledger.errors import Conflict

        raise Conflict(f"run '{key}' is already {status}; pass an open run to --testledger-run")


def _batches(results: list[ResultIn]) -> list[list[ResultIn]]:
    """Results in requests that stay under the server's body limit; a result too large on its own is
    sent with its longest fields cut to their ends (the store would cut them anyway)."""
    batches: list[list[ResultIn]] = [[]]
    size = 0
    for result in results:
        length = len(result.model_dump_json(exclude_none=True))
        if length > BATCH_BYTES:
            result, length = _cut(result)
        if batches[-1] and size + length > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(result)
        size += length
    return batches


def _cut(result: ResultIn) -> tuple[ResultIn, int]:
    from testledger.textlimits import cap_text

    keep = BATCH_BYTES // 8
    cut = result.model_copy(update={name: cap_text(getattr(result, name), keep)
                                    for name in ("message", "stack_trace", "stdout", "stderr")
                                    if getattr(result, name) is not None})
    return cut, len(cut.model_dump_json(exclude_none=True))


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
