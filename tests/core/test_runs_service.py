"""Run services on SQLite and PostgreSQL: create, transition, record results, get, list and page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from testledger.caseid import case_id, reported_identity
from testledger.db import records
from testledger.db.engine import Store
from testledger.db.rows import NewCase, NewResult
from testledger.db.tables import Workspace
from testledger.errors import Conflict, Invalid, NotFound
from testledger.provenance import Provenance
from testledger.schemas import ExecutionOut
from testledger.services import runs

ENVS = ["dev", "staging", "prod", "local", "ci"]


def new_run(store: Store, *, pipeline: str = "smoke", env: str = "ci", **kw: object) -> str:
    with store.write() as db:
        run = records.create_run(
            db, workspace="WKS", actor="alice", environment=env, allowed_environments=ENVS,
            pipeline_key=pipeline, **kw,  # type: ignore[arg-type]
        )
        return run.key


def result(db: Session, idx: int, status: str, *, name: str | None = None, **kw: object) -> NewResult:
    name = name or f"test_{idx}"
    identity = reported_identity("suite", "pkg.Class", name)
    # The writer keys cases per workspace; its id is whatever the store handed out (PostgreSQL's
    # sequences keep counting across the tests that share a schema).
    workspace_id = db.scalars(select(Workspace.id).where(Workspace.key == "WKS")).one()
    case = NewCase(id=case_id(workspace_id, identity), identity=identity, kind="reported", name=name,
                   suite="suite", classname="pkg.Class")
    return NewResult(idx=idx, case=case, status=status, **kw)  # type: ignore[arg-type]


def record(db: Session, key: str, *results: NewResult) -> None:
    records.record_results(db, run=records.find_run(db, workspace="WKS", key=key), results=results)


def start(db: Session, key: str) -> None:
    records.transition(db, workspace="WKS", key=key, to="running")


def test_run_key_has_workspace_date_and_sequence(store: Store) -> None:
    first, second = new_run(store), new_run(store)
    today = datetime.now(UTC).strftime("%m%d")
    assert re.fullmatch(rf"WKS-{today}-\d+", first)
    assert int(second.rsplit("-", 1)[1]) == int(first.rsplit("-", 1)[1]) + 1


def test_new_run_is_pending_and_knows_its_pipeline(store: Store) -> None:
    key = new_run(store, env="production", revision="abc123", branch="main", labels={"team": "web"})
    with store.read() as db:
        e = runs.get_execution(db, workspace="WKS", key=key)
    assert (e.status, e.result, e.test_run_status) == ("PENDING", None, "running")
    assert (e.pipeline_key, e.environment, e.revision, e.branch) == ("smoke", "prod", "abc123", "main")
    assert e.labels == {"team": "web"} and e.triggered_by == "alice" and e.trigger == "manual"
    assert e.cases == [] and e.totals.tests == 0


def test_lifecycle_sets_timestamps_once_and_derives_result(store: Store) -> None:
    key = new_run(store)
    with store.write() as db:
        start(db, key)
        record(
            db, key,
            result(db, 0, "passed", duration_ms=1200.0),
            result(db, 1, "failed", message="expected 200, got 500", error_type="AssertionError",
                   failure_category="assertion"),
            result(db, 2, "skipped"),
        )
        finished = runs.finish_run(db, workspace="WKS", key=key)
    assert (finished.status, finished.result) == ("COMPLETED", "FAILED")
    with store.read() as db:
        e = runs.get_execution(db, workspace="WKS", key=key)
    assert (e.status, e.result, e.test_run_status) == ("COMPLETED", "FAILED", "failed")
    assert e.started_at is not None and e.completed_at is not None and e.completed_at >= e.started_at
    assert e.duration_ms is not None and e.duration_ms >= 0
    assert (e.totals.tests, e.totals.passed, e.totals.failed, e.totals.skipped) == (3, 1, 1, 1)
    assert [c.status for c in e.cases or []] == ["PASSED", "FAILED", "SKIPPED"]
    failed = (e.cases or [])[1]
    assert failed.error == "AssertionError: expected 200, got 500"
    assert failed.failure_category == "assertion" and failed.case_key == "pkg.Class::test_1"
    with store.write() as db, pytest.raises(Conflict, match="already completed"):
        runs.finish_run(db, workspace="WKS", key=key, status="cancelled")
    with store.read() as db:
        assert runs.get_execution(db, workspace="WKS", key=key).completed_at == e.completed_at


def test_results_cannot_be_added_to_a_finished_run(store: Store) -> None:
    key = new_run(store)
    with store.write() as db:
        runs.finish_run(db, workspace="WKS", key=key, status="cancelled")
    with store.write() as db, pytest.raises(Conflict, match="results cannot be added"):
        record(db, key, result(db, 0, "passed"))


def test_infrastructure_fault_makes_the_run_error(store: Store) -> None:
    key = new_run(store)
    with store.write() as db:
        start(db, key)
        record(db, key, result(db, 0, "passed"),
               result(db, 1, "error", message="Connection refused", failure_category="infrastructure"))
        assert runs.finish_run(db, workspace="WKS", key=key).result == "ERROR"


def test_explicit_result_is_validated(store: Store) -> None:
    key = new_run(store)
    with store.write() as db, pytest.raises(Invalid, match="unknown result 'green'"):
        runs.finish_run(db, workspace="WKS", key=key, result="green")


def test_missing_run_and_other_workspace_are_not_found(store: Store) -> None:
    key = new_run(store)
    with store.read() as db:
        with pytest.raises(NotFound, match="run 'NOPE-1' not found"):
            runs.get_execution(db, workspace="WKS", key="NOPE-1")
        with pytest.raises(NotFound, match="run 'WKS-0101-999999' not found"):
            runs.get_execution(db, workspace="WKS", key="WKS-0101-999999")
        with pytest.raises(NotFound, match=f"run '{key}' not found in workspace OTHER"):
            runs.get_execution(db, workspace="OTHER", key=key)


def test_attempts_and_same_test_across_runs_share_a_case(store: Store) -> None:
    keys = [new_run(store), new_run(store)]
    for key in keys:
        with store.write() as db:
            record(db, key, result(db, 0, "passed", name="test_login", flaky=True,
                                   attempts=[{"status": "failed", "message": "boom"}, {"status": "passed"}]))
    with store.read() as db:
        cases = [runs.get_execution(db, workspace="WKS", key=k).cases for k in keys]
        from sqlalchemy import func, select

        from testledger.db.tables import Case
        assert db.scalar(select(func.count()).select_from(Case)) == 1
    for case_list in cases:
        assert case_list is not None
        assert (case_list[0].attempts, case_list[0].flaky, case_list[0].status) == (2, True, "PASSED")


def test_list_filters_and_keyset_pages(store: Store) -> None:
    made = []
    for i in range(7):
        key = new_run(store, pipeline="api" if i % 2 else "web", env="staging" if i < 3 else "ci")
        with store.write() as db:
            start(db, key)
            if i % 3 == 0:
                record(db, key, result(db, 0, "failed"))
            runs.finish_run(db, workspace="WKS", key=key)
        made.append(key)
    with store.read() as db:
        everything = runs.list_executions(db, workspace="WKS", limit=500).items
        assert [e.execution_id for e in everything] == made[::-1]
        failed = runs.list_executions(db, workspace="WKS", status="failed").items
        assert {e.execution_id for e in failed} == {made[0], made[3], made[6]}
        api = runs.list_executions(db, workspace="WKS", pipeline_key="api", environment="ci").items
        assert {e.execution_id for e in api} == {made[3], made[5]}
        pages, cursor = [], None
        while True:
            page = runs.list_executions(db, workspace="WKS", limit=3, cursor=cursor)
            pages.append([e.execution_id for e in page.items])
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == [made[6:3:-1], made[3:0:-1], made[0:1]]
        future = datetime.now(UTC) + timedelta(days=1)
        assert runs.list_executions(db, workspace="WKS", date_from=future).items == []
        with pytest.raises(Invalid, match="unknown status 'green'"):
            runs.list_executions(db, workspace="WKS", status="green")
        with pytest.raises(Invalid, match="invalid cursor"):
            runs.list_executions(db, workspace="WKS", cursor="garbage!")


def test_open_run_is_running_with_its_provenance(store: Store) -> None:
    provenance = Provenance(actor="ci-bot", trigger="gatekeeper", revision="0123abc", branch="main")
    with store.write() as db:
        e = runs.open_run(db, workspace="WKS", pipeline_key="e2e", environment="ci", allowed_environments=ENVS,
                          provenance=provenance, labels={"team": "web"})
    assert (e.status, e.pipeline_key, e.triggered_by, e.trigger) == ("RUNNING", "e2e", "ci-bot", "gatekeeper")
    assert (e.revision, e.branch, e.labels) == ("0123abc", "main", {"team": "web"})


def _big_run(store: Store, *, passed: int, failing: tuple[int, ...]) -> str:
    key = new_run(store)
    with store.write() as db:
        start(db, key)
        record(db, key, *(result(db, i, "failed" if i in failing else "passed") for i in range(passed)))
        runs.finish_run(db, workspace="WKS", key=key)
    return key


def test_show_lists_a_small_run_whole(store: Store) -> None:
    key = _big_run(store, passed=5, failing=(3,))
    with store.read() as db:
        e = runs.show_execution(db, workspace="WKS", key=key, limit=5)
    assert [c.index for c in e.cases or []] == [0, 1, 2, 3, 4]
    assert (e.cases_total, e.next_cursor) == (5, None)


def test_show_of_a_large_run_lists_failures_first_and_pages_the_rest(store: Store) -> None:
    """`runs show` of a big run: the failing cases (bounded) and a cursor, never every case at once."""
    key = _big_run(store, passed=50, failing=(7, 30, 31, 49))
    with store.read() as db:
        e = runs.show_execution(db, workspace="WKS", key=key, limit=3)
        assert [c.index for c in e.cases or []] == [7, 30, 31]
        assert (e.cases_total, e.next_cursor) == (50, "0")
        seen, cursor = [], e.next_cursor
        while cursor is not None:
            page = runs.get_execution(db, workspace="WKS", key=key, cursor=cursor, case_limit=20)
            seen += [c.index for c in page.cases or []]
            cursor = page.next_cursor
        assert seen == list(range(50))
        with pytest.raises(Invalid, match="invalid cursor"):
            runs.get_execution(db, workspace="WKS", key=key, cursor="x", case_limit=20)


def test_read_paths_on_a_bare_connection_answer_as_on_a_session(store: Store) -> None:
    """`runs list`, `runs show` and the API read on a Core connection; the schemas they build without
    validation (`model_construct`) are exactly what validating the same values gives."""
    key = new_run(store, env="production", revision="abc123", branch="main", labels={"team": "web"})
    with store.write() as db:
        start(db, key)
        record(db, key, result(db, 0, "passed", duration_ms=12.6), result(db, 1, "failed", message="boom"))
        runs.finish_run(db, workspace="WKS", key=key)
    with store.read() as db:
        on_session = runs.list_executions(db, workspace="WKS", labels={"team": "web"}).model_dump_json()
        shown_on_session = runs.show_execution(db, workspace="WKS", key=key).model_dump_json()
    with store.read_connection() as conn:
        page = runs.list_executions(conn, workspace="WKS", labels={"team": "web"})
        shown = runs.show_execution(conn, workspace="WKS", key=key)
    assert page.model_dump_json() == on_session and shown.model_dump_json() == shown_on_session
    [execution] = page.items
    for built in (execution, shown):  # the same JSON, to the order of its keys (what `--json` prints)
        assert built.model_dump_json() == ExecutionOut.model_validate(built.model_dump()).model_dump_json()
    assert (execution.labels, execution.totals.failed, execution.created_at.tzinfo) == ({"team": "web"}, 1, UTC)
    assert [(c.index, c.duration_ms, c.status, c.flaky) for c in shown.cases or []] == [
        (0, 13, "PASSED", False), (1, None, "FAILED", False)]


def test_read_columns_are_the_models_columns() -> None:
    """`db.reads` names each column its model has, with the model's type."""
    from testledger.db import reads
    from testledger.db.tables import schema

    for table in reads.TABLES:
        model = schema().tables[table.name]
        for column in table.c:
            assert column.name in model.c, f"{table.name}.{column.name}"
            expected = model.c[column.name].type
            assert type(column.type).__name__ == type(expected).__name__ or isinstance(
                column.type, type(expected)), f"{table.name}.{column.name}: {column.type!r} vs {expected!r}"
