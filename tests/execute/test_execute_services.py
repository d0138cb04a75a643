"""Execution services on SQLite and PostgreSQL: cancel a pending run, repair stuck runs for a scheduler."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from testledger.caseid import case_id, reported_identity
from testledger.db import records
from testledger.db.analytics_tables import AnalyticsQueue
from testledger.db.engine import Store
from testledger.db.rows import NewCase, NewResult
from testledger.db.tables import Case, Run
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid, NotFound
from testledger.pipelinefile import parse_pipeline
from testledger.provenance import Provenance
from testledger.services import execution, runs
from testledger.services.execution import RunSignal
from testledger.services.launch import prepare_run
from testledger.services.pipelines import apply_pipeline

ENVS = ["dev", "staging", "prod", "local", "ci"]
DOC = "key: svc\ncases:\n  - {key: a, command: 'true'}\n  - {key: b, command: 'true'}\n"


def _run(store: Store, *, executor: str | None = None, started: bool = True) -> str:
    with store.write() as db:
        apply_pipeline(db, workspace="WKS", document=parse_pipeline(DOC), actor="alice")
        run = execution.create_pipeline_run(
            db, workspace="WKS", pipeline_key="svc", provenance=Provenance(actor="alice"), allowed_environments=ENVS)
        if started:
            execution.start_run(db, key=run.execution_id, executor=executor or execution.local_executor_id())
        return run.execution_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_pending_run_is_cancelled_at_once(store: Store) -> None:
    key = _run(store, started=False)
    with store.write() as db:
        assert execution.request_cancel(db, workspace="WKS", key=key).status == "CANCELLED"
    with store.write() as db, pytest.raises(Conflict, match="already cancelled"):
        execution.request_cancel(db, workspace="WKS", key=key)


def test_repair_stuck_runs_ends_dead_and_silent_executors_only(store: Store) -> None:
    alive = _run(store)
    dead = _run(store, executor=f"local:{socket.gethostname()}:{_dead_pid()}")
    silent = _run(store, executor="celery:task-1")
    bracketed = _run(store, executor="cli")  # `runs start` runs never beat; they are not repaired
    now = utcnow()
    with store.write() as db:
        assert execution.repair_stuck_runs(db, now=now, stale_after=60) == [dead]
    with store.write() as db:
        later = now + timedelta(seconds=120)
        assert sorted(execution.repair_stuck_runs(db, now=later, stale_after=60)) == sorted([alive, silent])
    with store.read() as db:
        repaired = runs.get_execution(db, workspace="WKS", key=dead)
        untouched = runs.get_execution(db, workspace="WKS", key=bracketed)
    assert (repaired.status, repaired.result) == ("COMPLETED", "ERROR")
    assert repaired.error and "is gone" in repaired.error
    assert [(c.status, c.failure_category) for c in repaired.cases or []] == [("ERROR", "infrastructure")] * 2
    assert untouched.status == "RUNNING"


def _many(keys: list[str], *, name: str = "") -> str:
    cases = "".join(f"  - {{key: {k}, name: '{name}{k}', command: 'true'}}\n" for k in keys)
    return f"key: big\ncases:\n{cases}"


def test_a_new_version_of_a_large_pipeline_keeps_its_known_cases_and_adds_the_new(store: Store) -> None:
    # More cases than one lookup of known cases asks for (500), in an order of their own.
    first = [f"c{i}" for i in range(1203)]
    second = [f"c{i}" for i in range(600, 1203)][::-1] + [f"n{i}" for i in range(700)]
    with store.write() as db:
        v1 = apply_pipeline(db, workspace="WKS", document=parse_pipeline(_many(first)), actor="alice")
        run = execution.create_pipeline_run(
            db, workspace="WKS", pipeline_key="big", provenance=Provenance(actor="alice"), allowed_environments=ENVS)
    with store.write() as db:
        v2 = apply_pipeline(db, workspace="WKS", document=parse_pipeline(_many(second, name="renamed ")),
                            actor="alice")
    assert v1.created and v2.created and v2.pipeline.version == 2
    assert [c.key for c in v2.pipeline.cases or []] == second
    assert [c.index for c in v2.pipeline.cases or []] == list(range(len(second)))
    assert {c.name for c in v2.pipeline.cases or []} == {f"renamed {k}" for k in second}
    with store.read() as db:
        stored = execution.run_spec(db, key=run.execution_id).spec  # the run made before keeps version 1
        assert [c.key for c in stored.cases] == first
        assert db.scalar(select(func.count()).select_from(Case)) == 1203 + 700  # one row per test, never twice


def _result(workspace_id: int, idx: int, status: str) -> NewResult:
    identity = reported_identity("suite", "pkg.Class", f"test_{idx}")
    case = NewCase(id=case_id(workspace_id, identity), identity=identity, kind="reported", name=f"test_{idx}")
    return NewResult(idx=idx, case=case, status=status, completed_at=utcnow())


def test_an_executor_moves_its_run_along_on_a_core_connection(store: Store) -> None:
    """What `testledger run KEY` does without the ORM: start, sync results and the heartbeat, learn of a
    cancel request, finish with the result the counters give; and what it is refused."""
    key = _run(store, started=False)
    with store.write_connection() as conn:
        spec = execution.run_spec(conn, key=key)
        execution.start_run(conn, key=key, executor="local:host:1")
    with store.write_connection() as conn, pytest.raises(Conflict, match="cannot go from running to running"):
        execution.start_run(conn, key=key, executor="local:host:2")
    results = [_result(spec.workspace_id, 0, "passed"), _result(spec.workspace_id, 1, "failed")]
    with store.write_connection() as conn:
        assert execution.sync_run(conn, key=key, results=results, now=utcnow()) == RunSignal(
            cancel_requested=False, ended=False)
    with store.write() as db:  # another process asks to cancel: the executor learns it at its next sync
        execution.request_cancel(db, workspace="WKS", key=key)
    with store.write_connection() as conn:
        assert execution.sync_run(conn, key=key, results=[], now=utcnow()).cancel_requested
        assert execution.finish_run(conn, key=key, status="completed") is True
    with store.write_connection() as conn:
        assert execution.finish_run(conn, key=key, status="cancelled") is False  # ended already: unchanged
        assert execution.sync_run(conn, key=key, results=[], now=utcnow()).ended
        with pytest.raises(NotFound, match="run 'WKS-0101-999' not found"):
            execution.start_run(conn, key="WKS-0101-999", executor="local:host:1")
    with store.read() as db:
        run = db.scalars(select(Run).where(Run.key == key)).one()
        stored = (run.status, run.result, run.executor, run.tests, run.failed)
        assert run.started_at is not None and run.heartbeat_at is not None and run.duration_ms is not None
        queued = db.scalar(select(func.count()).select_from(AnalyticsQueue).where(AnalyticsQueue.run_id == run.id))
        shown = runs.get_execution(db, workspace="WKS", key=key)
    assert stored == ("completed", "failed", "local:host:1", 2, 1)
    assert queued == 1  # for the analytics rollups, once
    assert [(c.index, c.status) for c in shown.cases or []] == [(0, "PASSED"), (1, "FAILED")]


def test_a_stored_pipeline_that_cannot_run_is_named_with_the_fix(store: Store) -> None:
    def prepare(workspace: str, key: str) -> None:
        with store.write_connection() as conn:
            prepare_run(conn, workspace=workspace, pipeline=key, provenance=Provenance(actor="alice"),
                        allowed_environments=ENVS, workdir=Path.cwd())

    with pytest.raises(NotFound, match=r"workspace 'NEW' not found \(apply a pipeline file to create it\)"):
        prepare("NEW", "svc")
    _run(store, started=False)
    with pytest.raises(NotFound, match="pipeline 'nope' not found in workspace WKS"):
        prepare("WKS", "nope")
    with store.write() as db:  # known from an ingested report only: no document to run
        records.ensure_pipeline(db, workspace=records.ensure_workspace(db, key="WKS"), key="ci-only")
    with pytest.raises(Invalid, match=r"'ci-only' has no cases to run: .*testledger pipelines apply FILE"):
        prepare("WKS", "ci-only")
    with store.read() as db:
        assert db.scalar(select(func.count()).select_from(Run)) == 1  # nothing was created by the refusals
