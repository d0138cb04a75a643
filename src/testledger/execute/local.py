"""The local executor: runs a pipeline's cases in this process, `parallelism` at a time, each in its own
process group, recording results through the store as they finish."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testledger import lifecycle
from testledger.db.engine import Store
from testledger.execute.attempt import AttemptResult, CaseContext, seconds_text
from testledger.execute.executor import CaseFinished, CaseStarted, EventSink, RunRequest
from testledger.execute.http import run_http
from testledger.execute.kinds import run_command, run_pytest
from testledger.execute.ledger import RunLedger
from testledger.execute.logstore import CaseOutput, LogStore, list_attachments
from testledger.execute.plan import CasePlan, RunPlan
from testledger.execute.process import ProcessGroups
from testledger.execute.results import case_results
from testledger.schemas import ExecutionOut

KINDS: dict[str, Callable[[CaseContext, dict[str, Any]], AttemptResult]] = {
    "command": run_command, "pytest": run_pytest, "http": run_http,
}
#: How long a halted run waits for in-flight cases to report after their processes were killed.
_HALT_WAIT_S = 5.0
#: How often the coordinator collects finished cases when nothing asks for it sooner. A wake-up per
#: case (a thread switch and a GIL hand-over) cost a quick case more than its bookkeeping did.
_COLLECT_S = 0.02


@dataclass(slots=True)
class CaseReport:
    """A finished (or never started) pipeline case, as a worker hands it to the coordinator."""

    case: CasePlan
    attempts: list[AttemptResult]
    output: str | None = None
    log_ref: str | None = None
    attachments: list[str] | None = None
    completed_at: datetime | None = None


class LocalRun:
    """Executes one run: worker threads run cases; this thread records results, beats and polls cancels.

    The coordinator collects finished cases every `_COLLECT_S`, all at once, and is woken sooner only
    when it has something to decide (a case others need, the end of the queue, a halt or a cancel).
    """

    def __init__(
        self, plan: RunPlan, ledger: RunLedger, *, logs: LogStore, attachments_root: Path, worker: str,
        grace: float, on_event: EventSink | None = None,
    ) -> None:
        self.plan, self.ledger, self.logs, self.worker = plan, ledger, logs, worker
        self.attachments_root = attachments_root / plan.run_key
        #: Per-case paths are joined as text: pathlib's joins were a fifth of a quick case's bookkeeping.
        self._attachments_dir = str(self.attachments_root)
        self._attachments_prefix = os.path.join(self._attachments_dir, "")
        self.grace = grace
        self.on_event = on_event or (lambda _event: None)
        self.groups = ProcessGroups()
        self.stop = threading.Event()
        self.halt: str | None = None  # "cancelled", "timeout" or "fail_fast"
        self._todo: queue.SimpleQueue[CasePlan | None] = queue.SimpleQueue()
        self._waiting = [case for case in plan.cases if case.needs]
        self._outcomes: dict[int, str] = {}
        self._done: queue.SimpleQueue[CaseReport] = queue.SimpleQueue()
        #: Set by a worker when the coordinator must look now, not at its next collection: a case
        #: that others need finished, the queue of cases ran dry, or the run halted.
        self._wake = threading.Event()
        self._needed = {index for case in plan.cases for index in case.needs}
        self._next_sub = len(plan.cases)
        self._base_env = {**os.environ, **plan.env}
        self._deadline = None if plan.timeout_s is None else time.monotonic() + plan.timeout_s

    # -- coordinator --------------------------------------------------------------------------
    def execute(self) -> None:
        self.ledger.start(executor=self.worker)
        try:
            self.logs.prepare(self.plan.run_key)
            for case in self.plan.cases:
                if not case.needs:
                    self._todo.put(case)
            workers = min(self.plan.parallelism, len(self.plan.cases))
            for number in range(workers):
                scratch = os.path.join(self._attachments_dir, f".worker-{number}")
                os.makedirs(scratch, exist_ok=True)
                threading.Thread(target=self._work, args=(scratch,), daemon=True,
                                 name=f"case-worker-{self.plan.run_key}").start()
            try:
                self._collect()
            finally:
                for _ in range(workers):
                    self._todo.put(None)
            self.ledger.finish(status=self._final_status())
        except BaseException as exc:
            self.stop.set()
            self.ledger.finish(status=lifecycle.COMPLETED, error=self.plan.masker.text(f"executor failed: {exc!r}"))
            raise
        finally:
            self.groups.kill_all(grace=self.grace)

    def _collect(self) -> None:
        pending = {case.index for case in self.plan.cases}
        halted_at: float | None = None
        while pending:
            self._check_limits()
            if self.halt in ("cancelled", "timeout") and halted_at is None:
                halted_at = time.monotonic()
            if halted_at is not None and time.monotonic() - halted_at > self.grace + _HALT_WAIT_S:
                break
            self._wake.wait(min(self.ledger.next_due(), _COLLECT_S) or 0.001)
            self._wake.clear()
            for report in self._finished():
                pending.discard(report.case.index)
                self._record(report)
            if self._waiting:
                pending -= self._release()
            if self.ledger.next_due() == 0:
                self.ledger.sync()
        for index in sorted(pending):  # in-flight cases that did not report after their kill
            self._record(CaseReport(self.plan.cases[index], [self._not_run(self.plan.cases[index])]))
        self.ledger.sync()

    def _finished(self) -> list[CaseReport]:
        reports = []
        with contextlib.suppress(queue.Empty):
            while True:
                reports.append(self._done.get_nowait())
        return reports

    def _release(self) -> set[int]:
        """Queue waiting cases whose needs all passed; record the rest as not run. Returns those recorded."""
        recorded: set[int] = set()
        changed = True
        while changed:
            changed = False
            for case in list(self._waiting):
                failed = [self.plan.cases[i].key for i in case.needs if self._outcomes.get(i, "passed") != "passed"]
                if not failed and self.halt is None and all(i in self._outcomes for i in case.needs):
                    self._waiting.remove(case)
                    self._todo.put(case)
                elif failed or self.halt is not None:
                    self._waiting.remove(case)
                    reason = f"not run: needs '{failed[0]}', which did not pass" if failed else None
                    self._record(CaseReport(case, [self._not_run(case, reason)]))
                    recorded.add(case.index)
                    changed = True
        return recorded

    def _check_limits(self) -> None:
        if self.halt in ("cancelled", "timeout"):
            return
        if self.ledger.cancel_requested or self.ledger.ended_elsewhere:
            self._halt("cancelled")
        elif self._deadline is not None and time.monotonic() >= self._deadline:
            self._halt("timeout")

    def _halt(self, reason: str) -> None:
        self.halt = reason
        if reason != "fail_fast":
            self.stop.set()

    def _record(self, report: CaseReport) -> None:
        if self.halt == "timeout":
            _as_run_timeout(report.attempts[-1], self.plan.timeout_s)
        results, self._next_sub = case_results(
            report, plan=self.plan, worker=self.worker, next_sub=self._next_sub,
        )
        self.ledger.add(results)
        top = results[0]
        self._outcomes[report.case.index] = top.status
        self.on_event(CaseFinished(
            index=report.case.index, key=report.case.key, name=report.case.name, status=top.status,
            duration_ms=top.duration_ms, flaky=top.flaky, attempts=len(report.attempts),
            error=top.message,
        ))
        if self.plan.fail_fast and top.status in ("failed", "error") and self.halt is None:
            self._halt("fail_fast")

    def _final_status(self) -> str:
        if self.halt == "cancelled":
            return lifecycle.CANCELLED
        if self.halt == "timeout":
            return lifecycle.TIMEOUT
        return lifecycle.COMPLETED

    # -- workers ------------------------------------------------------------------------------
    def _work(self, scratch: str) -> None:
        while True:
            case = self._todo.get()
            if case is None:
                with contextlib.suppress(OSError):
                    os.rmdir(scratch)
                return
            if self.halt is None and self._deadline is not None and time.monotonic() >= self._deadline:
                self._halt("timeout")  # here too: the coordinator may not have seen the limit pass yet
            if self.halt is not None:
                self._report(CaseReport(case, [self._not_run(case)]))
                continue
            self.on_event(CaseStarted(index=case.index, key=case.key, name=case.name))
            try:
                report = self._run_case(case, scratch)
            except Exception as exc:  # a bug in a kind must not hang the run: record it on the case
                failed = AttemptResult(status="error", started_at=datetime.now(UTC), error_type=type(exc).__name__,
                                       message=f"the executor failed on this case: {exc}")
                failed.decide_category(infrastructure=True)
                report = CaseReport(case, [failed])
            if self.plan.fail_fast and report.attempts[-1].status in ("failed", "error") and self.halt is None:
                self._halt("fail_fast")  # here, not in the coordinator, so this worker's next case sees it
            self._report(report)

    def _report(self, report: CaseReport) -> None:
        self._done.put(report)
        if report.case.index in self._needed or self.halt is not None or self._todo.empty():
            self.wake()

    def wake(self) -> None:
        """Have the coordinator look now (finished cases, cancel, limits) instead of at its next round."""
        self._wake.set()

    def _run_case(self, case: CasePlan, scratch: str) -> CaseReport:
        ref = self.logs.ref(self.plan.run_key, case.index)
        output = CaseOutput(self.logs, ref, self.plan.masker)
        attachments = f"{self._attachments_prefix}{case.index}"
        # The case's directory is the worker's empty scratch directory renamed: a rename costs a
        # fraction of a mkdir, which dominated the per-case overhead of quiet commands.
        try:
            os.rename(scratch, attachments)
        except FileNotFoundError:  # lost to an earlier failure: fall back to a fresh directory
            os.makedirs(attachments, exist_ok=True)
        env = {**self._base_env, "TESTLEDGER_ATTACHMENTS_DIR": attachments}
        attempts: list[AttemptResult] = []
        try:
            for number in range(case.retries + 1):
                if number:
                    output.note(f"[testledger] attempt {number + 1} of {case.retries + 1}")
                attempt = KINDS[case.kind](self._context(case, output, env, attachments), case.spec)
                attempts.append(attempt)
                if attempt.status in ("passed", "skipped") or self.stop.is_set():
                    break
        finally:
            tail = output.close()
        log_ref = ref if output.size else None
        return CaseReport(case, attempts, output=tail, log_ref=log_ref, attachments=_keep(attachments, scratch),
                          completed_at=datetime.now(UTC))

    def _context(self, case: CasePlan, output: CaseOutput, env: dict[str, str], attachments: str) -> CaseContext:
        deadline = None if case.timeout_s is None else time.monotonic() + case.timeout_s
        limit = case.timeout_s
        if self._deadline is not None and (deadline is None or self._deadline < deadline):
            deadline, limit = self._deadline, self.plan.timeout_s
        return CaseContext(
            output=output, workdir=self.plan.workdir, env=env, attachments=attachments, groups=self.groups,
            stop=self.stop, grace=self.grace, deadline=deadline, limit_s=limit, masker=self.plan.masker,
        )

    def _not_run(self, case: CasePlan, reason: str | None = None) -> AttemptResult:
        """A case that never started: SKIPPED, whatever stopped the run (see `lifecycle.NOT_RUN`)."""
        return AttemptResult(status="skipped", started_at=datetime.now(UTC), stopped=True, started=False,
                             message=reason or lifecycle.NOT_RUN.get(self.halt or "", "not run"))


def _keep(attachments: str, scratch: str) -> list[str]:
    """The files a case left in its directory; an empty directory goes back to being the scratch one."""
    found = list_attachments(attachments)
    if found:
        os.mkdir(scratch)
    else:
        os.rename(attachments, scratch)
    return found


def _as_run_timeout(attempt: AttemptResult, limit_s: float | None) -> None:
    """When the run's time limit ends a running case, the case failed with category timeout; a case
    that never started stays SKIPPED, like the cases a cancel or fail_fast leaves."""
    if attempt.status == "passed" or not attempt.started:
        return
    if attempt.stopped or attempt.failure_category == "timeout":
        attempt.status, attempt.error_type = "failed", "TimeoutError"
        attempt.message = f"the run reached its time limit of {seconds_text(limit_s)}"
        attempt.failure_category = "timeout"


class LocalExecutor:
    """The in-process `Executor`: `submit` starts a run on a thread, `wait` joins it."""

    def __init__(
        self, store: Store, *, logs: LogStore, attachments_root: Path, heartbeat_seconds: float,
        grace: float = 2.0, on_event: EventSink | None = None,
    ) -> None:
        from testledger.services.execution import local_executor_id

        self.store, self.logs, self.attachments_root = store, logs, attachments_root
        self.heartbeat_seconds, self.grace, self.on_event = heartbeat_seconds, grace, on_event
        self.worker = local_executor_id()
        self._runs: dict[str, tuple[LocalRun, threading.Event]] = {}
        self._errors: dict[str, BaseException] = {}

    def prepare(self, request: RunRequest) -> LocalRun:
        from testledger.execute.plan import build_plan
        from testledger.services.execution import run_spec

        with self.store.read_connection() as db:
            found = run_spec(db, key=request.run_key)
        spec, workspace_id = found.spec, found.workspace_id
        plan = build_plan(spec, run_key=request.run_key, workspace_id=workspace_id, overrides=request.overrides,
                          workdir=request.workdir, parallelism=request.parallelism)
        ledger = RunLedger(self.store, run_key=request.run_key, heartbeat_seconds=self.heartbeat_seconds)
        return LocalRun(plan, ledger, logs=self.logs, attachments_root=self.attachments_root, worker=self.worker,
                        grace=self.grace, on_event=self.on_event)

    def submit(self, request: RunRequest) -> None:
        local_run = self.prepare(request)
        done = threading.Event()

        def target() -> None:
            try:
                local_run.execute()
            except BaseException as exc:
                self._errors[request.run_key] = exc
            finally:
                done.set()

        self._runs[request.run_key] = (local_run, done)
        threading.Thread(target=target, name=f"run-{request.run_key}", daemon=True).start()

    def wait(self, run_key: str, timeout: float | None = None) -> bool:
        """Wait for a submitted run to end; re-raises an executor failure. False on timeout.

        Waits on an event, not `Thread.join`: a join interrupted by Ctrl-C can wrongly report the
        thread as finished afterwards (CPython issue 90882), and Ctrl-C is how a user cancels.
        """
        if not self._runs[run_key][1].wait(timeout):
            return False
        if run_key in self._errors:
            raise self._errors.pop(run_key)
        return True

    def cancel(self, run_key: str) -> ExecutionOut:
        """Cancel through the store (as any other process would), and tell a run of ours at once."""
        from testledger.db.retry import write_with_retry
        from testledger.keys import workspace_of
        from testledger.services.execution import request_cancel

        workspace = workspace_of(run_key)
        execution = write_with_retry(self.store, lambda db: request_cancel(db, workspace=workspace, key=run_key),
                                     what=f"cancelling run {run_key}")
        if run_key in self._runs:
            local_run = self._runs[run_key][0]
            local_run.ledger.cancel_requested = True
            local_run.wake()
        return execution

    def status(self, run_key: str) -> ExecutionOut:
        from testledger.keys import workspace_of
        from testledger.services.runs import get_execution

        with self.store.read_connection() as db:
            return get_execution(db, workspace=workspace_of(run_key), key=run_key)
