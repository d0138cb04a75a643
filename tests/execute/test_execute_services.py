"""Execution services on SQLite and PostgreSQL: cancel a pending run, repair stuck runs for a scheduler."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from testledger.db.engine import Store
from testledger.db.types import utcnow
from testledger.errors import Conflict
from testledger.pipelinefile import parse_pipeline
from testledger.provenance import Provenance
from testledger.services import execution, runs
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
