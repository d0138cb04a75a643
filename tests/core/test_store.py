"""The store itself: migrations match the models on both backends, SQLite pragmas, concurrent writers."""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from testledger.db.engine import HEAD_REVISION, Store
from testledger.db.migrate import head_revision
from testledger.db.tables import schema
from testledger.errors import Unavailable
from testledger.provenance import Provenance
from testledger.services import runs


def test_migrations_produce_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), schema())
    assert diff == []
    assert store.revision() == HEAD_REVISION == head_revision()


def test_sqlite_store_is_wal_with_foreign_keys(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'new' / 'testledger.db'}")  # folder created, schema migrated
    with store.read() as db:
        assert db.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    assert store.revision() == HEAD_REVISION


def test_postgresql_store_waits_for_db_upgrade(pg_url: str) -> None:
    from sqlalchemy import create_engine

    # A name of its own: parallel test sessions share the database.
    schema = f"tl_unmigrated_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"'))
    url = pg_url.split("?")[0] + f"?options=-csearch_path%3D{schema}"
    try:
        with pytest.raises(Unavailable, match="not initialised: run `testledger db upgrade`"):
            Store(url)
        Store(url, check_schema=False).upgrade()
        assert Store(url).revision() == HEAD_REVISION
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _create_runs(url: str, count: int) -> None:
    store = Store(url)
    for _ in range(count):
        with store.write() as db:
            runs.open_run(db, workspace="WKS", pipeline_key="load", environment="ci", allowed_environments=["ci"],
                          provenance=Provenance(actor="p"))
    store.dispose()


def test_several_processes_write_one_store(store_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_create_runs, args=(store_url, 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = Store(store_url)
    with store.read() as db:
        keys = [e.execution_id for e in runs.list_executions(db, workspace="WKS", limit=500).items]
    assert len(keys) == len(set(keys)) == 100  # every run got its own number, none was lost
    assert sorted(int(k.rsplit("-", 1)[1]) for k in keys) == list(range(1, 101))


def test_the_binary_copy_of_results_names_each_column_s_type(pg_url: str) -> None:
    """Results reach PostgreSQL by binary COPY, which sends each column as the type `PG_RESULT_TYPES` names:
    a column whose type changes in a migration must change there too."""
    from testledger.db.bulk import PG_RESULT_TYPES
    from testledger.db.rows import RESULT_COLUMNS

    store = Store(pg_url)
    try:
        with store.read() as db:
            types: dict[str, str] = dict(db.execute(text(
                "SELECT a.attname, a.atttypid::regtype::text FROM pg_attribute a "
                "WHERE a.attrelid = 'case_results'::regclass AND a.attnum > 0 AND NOT a.attisdropped")).all())
    finally:
        store.dispose()
    names = {"integer": "int4", "bigint": "int8", "character varying": "varchar", "double precision": "float8",
             "boolean": "bool", "timestamp with time zone": "timestamptz"}
    assert {column: names.get(types[column], types[column]) for column in RESULT_COLUMNS} == dict(
        zip(RESULT_COLUMNS, PG_RESULT_TYPES, strict=True))


def test_a_used_sqlite_store_upgrades_across_a_table_rebuild_and_keeps_its_foreign_keys_on(tmp_path: Path) -> None:
    """Migration 0011 rebuilds `cases`, which `pipeline_cases` refers to: with SQLite's foreign keys on,
    dropping its old copy failed ("FOREIGN KEY constraint failed"), so an older store could not open."""
    from alembic import command
    from sqlalchemy import create_engine

    from testledger.db.migrate import alembic_config
    from testledger.pipelinefile import parse_pipeline
    from testledger.schemas import IngestOptions
    from testledger.services.ingest import ingest_files
    from testledger.services.pipelines import apply_pipeline

    path = tmp_path / "old.db"
    options = IngestOptions(actor="t", pipeline_key="p", environment="ci", allowed_environments=("ci",))
    report = tmp_path / "junit.xml"
    report.write_text('<testsuite name="s"><testcase classname="c" name="t1"/><testcase classname="c" name="t2"/>'
                      "</testsuite>")
    url = f"sqlite:///{path}"
    store = Store(url)
    with store.write() as db:
        apply_pipeline(db, workspace="WKS", document=parse_pipeline("key: p\ncases:\n  - {key: a, command: 'true'}\n"),
                       actor="t")
        ingest_files(db, workspace="WKS", sources=[report], options=options)
    store.dispose()
    engine = create_engine(url)
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
        conn.commit()
    counts = ("SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM pipeline_cases), "
              "(SELECT count(*) FROM case_results)")
    with engine.connect() as conn:
        before = tuple(conn.execute(text(counts)).one())
        assert conn.execute(text("PRAGMA foreign_key_list(cases)")).all()  # 0010 still has the key
    engine.dispose()
    assert before == (3, 1, 2)

    store = Store(url)  # migrates itself to the head
    try:
        assert store.revision() == HEAD_REVISION
        with store.read() as db:
            assert tuple(db.execute(text(counts)).one()) == before
            assert db.execute(text("PRAGMA foreign_key_list(cases)")).all() == []
            assert db.execute(text("PRAGMA foreign_keys")).scalar() == 1  # on again for the store's connections
        with store.write() as db:
            ingest_files(db, workspace="WKS", sources=[report], options=options)
        with store.read() as db:
            assert tuple(db.execute(text(counts)).one()) == (3, 1, 4)
    finally:
        store.dispose()


def test_json_columns_are_jsonb_on_postgresql_and_sqlite_needs_no_postgresql_dialect(pg_url: str) -> None:
    import subprocess
    import sys

    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateColumn

    from testledger.db.types import JSONType

    json_columns = [c for t in schema().tables.values() for c in t.c if isinstance(c.type, JSONType)]
    assert len(json_columns) > 10
    for column in json_columns:  # the DDL a migration emits for the models' type (0008 adds one so)
        ddl = CreateColumn(column).compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
        assert "JSONB" in str(ddl), column
    store = Store(pg_url)
    try:
        with store.read() as db:
            types = db.execute(text(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type IN ('json', 'jsonb')")).all()
    finally:
        store.dispose()
    assert {name for name, _ in types} == {f"{c.table.name}.{c.name}" for c in json_columns}
    assert {kind for _, kind in types} == {"jsonb"}
    # A command on a SQLite store maps every table without loading the PostgreSQL dialect.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, testledger.db.tables, testledger.db.reads; "
         "print(any(m.startswith('sqlalchemy.dialects.postgresql') for m in sys.modules))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"


def test_running_and_ingesting_map_no_analytics_table_and_the_schema_has_every_table() -> None:
    """The analytics tables (~90 columns) are mapped by the analytics code only; `schema()`, which the
    migrations compare against, holds them all. The second parse process's module (multiprocessing) is
    imported for a large report only."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, testledger.services.launch, testledger.execute.local, "
         "testledger.services.ingest, testledger.services.runs, testledger.services.pipelines; "
         "print(sorted(m for m in sys.modules if m in ('testledger.db.analytics_tables', "
         "'testledger.ingest.parse_process')))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
    assert {"test_runs", "case_results", "test_days", "analytics_queue", "quarantines"} <= set(schema().tables)


def test_an_ingest_imports_no_orm(tmp_path: Path) -> None:
    """`testledger ingest` writes its run, reports and results on a Core connection: the ORM and the
    declarative tables (~90 ms of a small ingest's start with their statements) are not imported."""
    import os
    import subprocess
    import sys

    report = tmp_path / "report.xml"
    report.write_text('<testsuite><testcase classname="c" name="a"/><testcase classname="c" name="b">'
                      '<failure message="boom"/></testcase></testsuite>')
    env = {**os.environ, "TESTLEDGER_HOME": str(tmp_path / "home")}
    env.pop("TESTLEDGER_DATABASE_URL", None)

    def ingest() -> set[str]:
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "testledger", "ingest", str(report),
                               "--pipeline", "unit", "--no-fail"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "1 passed, 1 failed" in done.stdout
        return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}

    ingest()  # the first command makes and migrates the store (through the ORM's metadata)
    assert not {"sqlalchemy.orm", "testledger.db.tables", "testledger.db.records"} & ingest()
