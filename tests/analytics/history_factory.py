"""Constructed histories: runs with chosen outcomes, revisions, branches and days, recorded through the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from testledger.caseid import case_id, reported_identity
from testledger.db import records as runs
from testledger.db.engine import Store
from testledger.db.rows import NewCase, NewResult

ENVS = ["dev", "staging", "prod", "local", "ci"]


@dataclass
class Outcome:
    """One test's result in a constructed run: `status`, and optionally its duration, message, retries."""

    name: str
    status: str = "passed"
    duration_ms: float | None = 10.0
    message: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None
    retried: bool = False
    classname: str = "app.Tests"


def case(name: str, classname: str = "app.Tests") -> NewCase:
    identity = reported_identity("suite", classname, name)
    return NewCase(id=case_id(1, identity), identity=identity, kind="reported", name=name, suite="suite",
                   classname=classname)


def case_id_of(name: str, classname: str = "app.Tests") -> int:
    return case(name, classname).id


@dataclass
class History:
    store: Store
    pipeline: str = "api"
    keys: list[str] = field(default_factory=list)

    def run(self, outcomes: list[Outcome], *, revision: str | None = None, branch: str | None = "main",
            env: str = "ci", days_ago: float = 0, pipeline: str | None = None) -> str:
        """Record a finished run with these outcomes, created `days_ago` days back; returns its key."""
        results = []
        for idx, o in enumerate(outcomes):
            attempts: list[dict[str, object]] | None = None
            if o.retried:
                attempts = [{"status": "failed", "duration_ms": 5.0, "message": "boom"},
                            {"status": o.status, "duration_ms": o.duration_ms}]
            category = "assertion" if o.status == "failed" else "error" if o.status == "error" else None
            results.append(NewResult(idx=idx, case=case(o.name, o.classname), status=o.status,
                                     duration_ms=o.duration_ms, message=o.message, error_type=o.error_type,
                                     stack_trace=o.stack_trace, failure_category=category, attempts=attempts,
                                     flaky=o.retried))
        with self.store.write() as db:
            run = runs.create_run(db, workspace="WKS", actor="tester", environment=env, allowed_environments=ENVS,
                                  pipeline_key=pipeline or self.pipeline, revision=revision, branch=branch,
                                  started=True)
            run.created_at = datetime.now(UTC) - timedelta(days=days_ago)
            db.flush()
            runs.record_results(db, run=run, results=results)
            runs.transition(db, workspace="WKS", key=run.key, to="completed", run=run)
            self.keys.append(run.key)
            return str(run.key)
