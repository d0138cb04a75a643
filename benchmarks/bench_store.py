"""Store benchmark: runs and case results through the product's write path and run-list service, beside raw ceilings."""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import Stopwatch, fmt_rate, latency_ms, machine_info, markdown_table, rate
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from testledger.caseid import case_id, reported_identity
from testledger.db.bulk import ResultWriter
from testledger.db.engine import Store
from testledger.db.records import ensure_pipeline, ensure_workspace
from testledger.db.rows import RESULT_COLUMNS, NewCase, NewResult, sqlite_datetime
from testledger.services.runs import list_executions

WORKSPACE = "BENCH"
DAYS = 90
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
OUTCOMES = {("completed", "passed"): 80, ("completed", "failed"): 15, ("completed", "error"): 2,
            ("cancelled", None): 1.5, ("timeout", None): 1.5}
ENVIRONMENTS = {"ci": 70, "staging": 20, "prod": 10}
BRANCHES = ("main", "main", "main", "release/2.4", "feature/login", "feature/search")
RUN_COLUMNS = (
    "id", "key", "workspace_id", "test_definition_id", "pipeline_version", "status", "result", "created_at",
    "started_at", "completed_at", "duration_ms", "environment", "triggered_by", "trigger", "revision", "branch",
    "cancel_requested", "tests", "passed", "failed", "errors", "skipped", "flaky", "infra_faults",
)
FAIL_MESSAGE = "AssertionError: expected status 200 but got 503 from /api/v1/orders"
TRACE = "".join(f'  File "tests/test_orders.py", line {n}, in test_checkout\n    assert resp.status == 200\n'
                for n in range(20))
LEAN_SQL = (
    "SELECT r.*, p.key FROM pipelines AS p JOIN test_runs AS r ON r.test_definition_id = p.id "
    "WHERE p.workspace_id = {ph} AND p.key = {ph} AND r.status = 'completed' AND r.result = 'failed' "
    "ORDER BY r.created_at DESC LIMIT 50"
)


@dataclass(slots=True)
class RunSpec:
    id: uuid.UUID
    number: int
    pipeline: int
    status: str
    result: str | None
    created: datetime
    started: datetime
    completed: datetime
    environment: str
    revision: str
    branch: str


@dataclass
class Config:
    runs: int
    results: int
    pipelines: int
    tests: int
    chunk_runs: int
    ingest_sample: int
    calls: int
    seed: int

    @property
    def per_run(self) -> int:
        return max(1, self.results // self.runs)


@dataclass
class Outcome:
    """Everything measured on one backend."""

    backend: str
    version: str = ""
    rates: dict[str, float | None] = field(default_factory=dict)
    latencies: dict[str, tuple[float, float]] = field(default_factory=dict)
    distinct_tests: int = 0


# -- synthetic data ------------------------------------------------------------------------------


def uuid7_at(when: datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 stamped with `when`, as the product's `uuid7()` would have made at that moment."""
    ms = int(when.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    return uuid.UUID(int=value)


def plan_runs(cfg: Config, rng: random.Random) -> list[RunSpec]:
    """Runs spread evenly over the last DAYS days, oldest first (the order they would be created)."""
    end = datetime.now(UTC) - timedelta(hours=1)
    step = DAYS * 86_400 / cfg.runs
    outcomes, weights = list(OUTCOMES), list(OUTCOMES.values())
    envs, env_weights = list(ENVIRONMENTS), list(ENVIRONMENTS.values())
    specs = []
    for i in range(cfg.runs):
        created = end - timedelta(seconds=(cfg.runs - i) * step - rng.random() * step / 2)
        started = created + timedelta(seconds=rng.uniform(1, 30))
        (status, result), = rng.choices(outcomes, weights)
        specs.append(RunSpec(
            id=uuid7_at(created, rng), number=i + 1, pipeline=rng.randrange(cfg.pipelines), status=status,
            result=result, created=created, started=started,
            completed=started + timedelta(seconds=rng.uniform(60, 1800)),
            environment=rng.choices(envs, env_weights)[0], revision=f"{rng.getrandbits(160):040x}",
            branch=rng.choice(BRANCHES),
        ))
    return specs


def plan_tests(cfg: Config, workspace_id: int) -> list[list[NewCase]]:
    """Each pipeline owns tests/pipelines tests; a run executes one shard of them."""
    per_pipeline = max(1, cfg.tests // cfg.pipelines)
    suites = []
    for p in range(cfg.pipelines):
        cases = []
        for t in range(per_pipeline):
            suite, classname, name = f"pipe-{p:03d}", f"tests.pipe{p:03d}.test_mod{t // 10}", f"test_case_{t}"
            identity = reported_identity(suite, classname, name)
            cases.append(NewCase(id=case_id(workspace_id, identity), identity=identity, kind="reported",
                                 name=name, suite=suite, classname=classname))
        suites.append(cases)
    return suites


def case_statuses(spec: RunSpec, n: int, rng: random.Random) -> list[str]:
    statuses = ["skipped" if rng.random() < 0.03 else "passed" for _ in range(n)]
    if spec.result == "failed":
        for i in rng.sample(range(n), k=min(n, rng.randint(1, 3))):
            statuses[i] = "failed"
    elif spec.result == "error":
        statuses[rng.randrange(n)] = "error"
    elif spec.status != "completed":
        statuses[n // 2:] = ["skipped"] * (n - n // 2)
    return statuses


def make_results(spec: RunSpec, tests: list[NewCase], per_run: int, rng: random.Random) -> list[NewResult]:
    shard = spec.number % max(1, len(tests) // per_run)
    at, results = spec.started, []
    for idx, status in enumerate(case_statuses(spec, per_run, rng)):
        duration = round(rng.lognormvariate(5, 1.5), 3)
        end = at + timedelta(milliseconds=duration)
        bad = status in ("failed", "error")
        results.append(NewResult(
            idx=idx, case=tests[(shard * per_run + idx) % len(tests)], status=status, duration_ms=duration,
            message=FAIL_MESSAGE if bad else None, error_type="AssertionError" if bad else None,
            failure_category=("infrastructure" if status == "error" else "assertion") if bad else None,
            stack_trace=TRACE if bad else None, worker=f"gw{idx % 4}", started_at=at, completed_at=end,
        ))
        at = end
    return results


def raw_result_row(run: uuid.UUID, r: NewResult, sqlite: bool) -> tuple[Any, ...]:
    """The tuple the ceiling inserts: the columns of `RESULT_COLUMNS`, already in driver form."""
    if sqlite:
        run_id, flaky, started, ended = run.hex, int(r.flaky), sqlite_datetime(r.started_at), sqlite_datetime(
            r.completed_at)
    else:
        run_id, flaky, started, ended = str(run), r.flaky, r.started_at, r.completed_at
    return (run_id, r.idx, r.parent_idx, r.case.id, r.status, r.duration_ms, r.message, r.error_type,
            r.failure_category, r.stack_trace, r.stdout, r.stderr, None, 1, None, flaky, r.worker, started, ended,
            r.log_ref, None)


def run_row(spec: RunSpec, workspace_id: int, pipeline_ids: list[uuid.UUID], sqlite: bool) -> tuple[Any, ...]:
    duration = int((spec.completed - spec.started).total_seconds() * 1000)
    row = (spec.id, f"{WORKSPACE}-{spec.created:%m%d}-{spec.number}", workspace_id, pipeline_ids[spec.pipeline], 0,
           spec.status, spec.result, spec.created, spec.started, spec.completed, duration, spec.environment,
           "ci-bot", "api", spec.revision, spec.branch, False, 0, 0, 0, 0, 0, 0, 0)
    if not sqlite:
        return row
    convert = {uuid.UUID: lambda v: v.hex, datetime: sqlite_datetime, bool: int}
    return tuple(convert.get(type(v), lambda v: v)(v) for v in row)


# -- backends ------------------------------------------------------------------------------------


class Backend:
    """What differs between SQLite and PostgreSQL: setup, raw connections and raw inserts."""

    name = ""
    placeholder = "?"
    raw_methods: tuple[str, ...] = ("executemany",)
    explain_prefix = "EXPLAIN QUERY PLAN "
    url = ""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def version(self, raw: Any) -> str:
        raise NotImplementedError

    def raw_connection(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def insert_runs(self, store: Store, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def create_raw_tables(self, raw: Any) -> None:
        raise NotImplementedError

    def raw_insert(self, raw: Any, method: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def after_fill(self, raw: Any) -> None: ...

    def explain(self, raw: Any, sql: str, params: Any) -> str:
        raise NotImplementedError

    def fetch(self, raw: Any, sql: str, params: Any) -> list[Any]:
        return list(raw.execute(sql, params).fetchall())

    def insert_sql(self, table: str, columns: Sequence[str]) -> str:
        marks = ", ".join([self.placeholder] * len(columns))
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


class SqliteBackend(Backend):
    name = "SQLite"

    def open(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench_store_")
        self.path = Path(self._tmp.name) / "store.db"
        self.url = f"sqlite:///{self.path}"

    def close(self) -> None:
        self._tmp.cleanup()

    def version(self, raw: Any) -> str:
        return str(raw.execute("SELECT sqlite_version()").fetchone()[0])

    @contextmanager
    def raw_connection(self) -> Iterator[sqlite3.Connection]:
        # The store's pragmas, minus foreign_keys: the ceiling table has no parents to check.
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        try:
            yield conn
        finally:
            conn.close()

    def insert_runs(self, store: Store, rows: list[tuple[Any, ...]]) -> None:
        with store.write() as db:
            db.connection().exec_driver_sql(self.insert_sql("test_runs", RUN_COLUMNS), rows)

    def create_raw_tables(self, raw: sqlite3.Connection) -> None:
        ddl = raw.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'case_results'").fetchone()[0]
        raw.execute(ddl.replace("CREATE TABLE case_results", "CREATE TABLE raw_executemany", 1))

    def raw_insert(self, raw: sqlite3.Connection, method: str, rows: list[tuple[Any, ...]]) -> None:
        raw.execute("BEGIN")
        raw.executemany(self.insert_sql(f"raw_{method}", RESULT_COLUMNS), rows)
        raw.execute("COMMIT")

    def explain(self, raw: sqlite3.Connection, sql: str, params: Any) -> str:
        return "\n".join(f"{'  ' * (row[1] > 0)}{row[3]}" for row in raw.execute(self.explain_prefix + sql, params))


class PostgresBackend(Backend):
    name = "PostgreSQL"
    placeholder = "%s"
    raw_methods = ("executemany", "copy")
    explain_prefix = "EXPLAIN (ANALYZE, BUFFERS) "

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.schema = f"bench_{uuid.uuid4().hex[:10]}"

    def _conninfo(self) -> str:
        return make_url(self.base_url).set(drivername="postgresql").render_as_string(hide_password=False)

    def open(self) -> None:
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        url = make_url(self.base_url).update_query_dict({"options": f"-csearch_path={self.schema}"})
        self.url = url.render_as_string(hide_password=False)

    def close(self) -> None:
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def version(self, raw: Any) -> str:
        return str(raw.execute("SHOW server_version").fetchone()[0]).split()[0]

    @contextmanager
    def raw_connection(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self._conninfo(), options=f"-csearch_path={self.schema}") as conn:
            yield conn

    def insert_runs(self, store: Store, rows: list[tuple[Any, ...]]) -> None:
        copy_sql = f"COPY test_runs ({', '.join(RUN_COLUMNS)}) FROM STDIN"
        with store.write() as db:
            raw = db.connection().connection.driver_connection
            with raw.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)

    def create_raw_tables(self, raw: psycopg.Connection[Any]) -> None:
        for method in self.raw_methods:
            raw.execute(f"CREATE TABLE raw_{method} (LIKE case_results INCLUDING ALL)")
        raw.commit()

    def raw_insert(self, raw: psycopg.Connection[Any], method: str, rows: list[tuple[Any, ...]]) -> None:
        with raw.cursor() as cur:
            if method == "executemany":
                cur.executemany(self.insert_sql(f"raw_{method}", RESULT_COLUMNS), rows)
            else:
                with cur.copy(f"COPY raw_{method} ({', '.join(RESULT_COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        raw.commit()

    def after_fill(self, raw: psycopg.Connection[Any]) -> None:
        # Stands in for autovacuum's analyze, which a live server would run after such a load.
        for table in ("workspaces", "pipelines", "test_runs", "cases", "case_results"):
            raw.execute(f"ANALYZE {table}")
        raw.commit()

    def explain(self, raw: psycopg.Connection[Any], sql: str, params: Any) -> str:
        return "\n".join(row[0] for row in raw.execute(self.explain_prefix + sql, params))


# -- phases --------------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def create_pipelines(store: Store, count: int) -> tuple[int, list[uuid.UUID], list[str]]:
    """The workspace and pipelines, through the product's services."""
    keys = [f"pipe-{p:03d}" for p in range(count)]
    with store.write() as db:
        ws = ensure_workspace(db, key=WORKSPACE)
        ids = [ensure_pipeline(db, workspace=ws, key=key).id for key in keys]
        return ws.id, ids, keys


def fill_runs(b: Backend, store: Store, specs: list[RunSpec], ws_id: int, pipeline_ids: list[uuid.UUID]) -> float:
    """Bulk-insert the runs (the product creates them one at a time); returns rows/s."""
    sqlite = isinstance(b, SqliteBackend)
    rows = [run_row(s, ws_id, pipeline_ids, sqlite) for s in specs]
    watch = Stopwatch()
    with watch.timing():
        b.insert_runs(store, rows)
    with store.write() as db:
        db.execute(text("UPDATE workspaces SET run_seq = :n WHERE id = :id"), {"n": len(specs), "id": ws_id})
    return rate(len(rows), watch.seconds)


def write_with_writer(store: Store, batch: list[tuple[RunSpec, list[NewResult]]], ws_id: int) -> None:
    """One transaction for the batch, one `ResultWriter` per run, as an ingest of several runs would."""
    now = datetime.now(UTC)
    with store.write() as db:
        for spec, results in batch:
            writer = ResultWriter(db, run_id=spec.id, workspace_id=ws_id, now=now)
            for r in results:
                writer.add(r)
            writer.flush()


def fill_results(b: Backend, store: Store, specs: list[RunSpec], cfg: Config, ctx: dict[str, Any]) -> dict[str, float]:
    """Case results of every run through `ResultWriter`, each chunk also raw-inserted into the ceiling tables."""
    rng, tests, ws_id = random.Random(cfg.seed + 1), ctx["tests"], ctx["ws_id"]
    sqlite, sample = isinstance(b, SqliteBackend), min(cfg.ingest_sample, len(specs) // 10)
    bulk, tail = specs[: len(specs) - sample], specs[len(specs) - sample:]
    product, ingest = Stopwatch(), Stopwatch()
    raw_watches = {m: Stopwatch() for m in b.raw_methods}
    with b.raw_connection() as raw:
        b.create_raw_tables(raw)
        for n, start in enumerate(range(0, len(bulk), cfg.chunk_runs)):
            chunk = bulk[start:start + cfg.chunk_runs]
            batch = [(s, make_results(s, tests[s.pipeline], cfg.per_run, rng)) for s in chunk]
            with product.timing():
                write_with_writer(store, batch, ws_id)
            rows = [raw_result_row(s.id, r, sqlite) for s, results in batch for r in results]
            for method, watch in raw_watches.items():
                with watch.timing():
                    b.raw_insert(raw, method, rows)
            if n % max(1, len(bulk) // cfg.chunk_runs // 10) == 0:
                progress(f"{b.name}: results for {start + len(batch):,}/{len(bulk):,} runs")
    for s in tail:
        batch = [(s, make_results(s, tests[s.pipeline], cfg.per_run, rng))]
        with ingest.timing():
            write_with_writer(store, batch, ws_id)
    n_bulk, n_tail = len(bulk) * cfg.per_run, len(tail) * cfg.per_run
    rates = {f"raw_{m}": rate(n_bulk, w.seconds) for m, w in raw_watches.items()}
    rates.update(writer=rate(n_bulk, product.seconds), ingest=rate(n_tail, ingest.seconds) if tail else 0.0)
    return rates


def time_calls(fn: Callable[[str], object], keys: Sequence[str], calls: int) -> tuple[float, float]:
    """Median and p95 ms of `calls` calls cycling over `keys`, after one untimed warm-up pass."""
    for key in keys:
        fn(key)
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        fn(keys[i % len(keys)])
        samples.append(time.perf_counter() - start)
    return latency_ms(samples)


def service_call(store: Store, key: str) -> list[str]:
    with store.read() as db:
        page = list_executions(db, workspace=WORKSPACE, pipeline_key=key, status="failed", limit=50)
    return [item.execution_id for item in page.items]


def capture_service_sql(store: Store, keys: Sequence[str]) -> tuple[str, dict[str, Any], dict[str, list[str]]]:
    """The SQL the service sends, its parameters per pipeline, and the run keys it returned."""
    seen: list[tuple[str, Any]] = []

    def listener(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "FROM test_runs" in statement:
            seen.append((statement, params))

    event.listen(Engine, "before_cursor_execute", listener)
    try:
        returned = {key: service_call(store, key) for key in keys}
    finally:
        event.remove(Engine, "before_cursor_execute", listener)
    return seen[0][0], {key: params for key, (_, params) in zip(keys, seen, strict=True)}, returned


def bench_queries(b: Backend, store: Store, keys: list[str], cfg: Config, ws_id: int, out: Outcome) -> None:
    sql, params, returned = capture_service_sql(store, keys)
    lean_sql = LEAN_SQL.format(ph=b.placeholder)
    out.latencies["service"] = time_calls(lambda k: service_call(store, k), keys, cfg.calls)
    with b.raw_connection() as raw:
        out.latencies["raw_service_sql"] = time_calls(lambda k: b.fetch(raw, sql, params[k]), keys, cfg.calls)
        out.latencies["raw_lean"] = time_calls(lambda k: b.fetch(raw, lean_sql, (ws_id, k)), keys, cfg.calls)
        key_col = 1  # test_runs.key is the second column of r.*
        mismatched = [k for k in keys if [row[key_col] for row in b.fetch(raw, lean_sql, (ws_id, k))] != returned[k]]
        print(f"\n### {b.name}: service SQL (list_executions, status=failed, limit=50)\n\n{sql}\n")
        print(f"EXPLAIN:\n{b.explain(raw, sql, params[keys[0]])}\n")
        lean_plan = b.explain(raw, lean_sql, (ws_id, keys[0]))
        print(f"### {b.name}: hand-written SQL\n\n{lean_sql}\n\nEXPLAIN:\n{lean_plan}\n")
    if mismatched:
        progress(f"WARNING {b.name}: hand-written query returned other rows for {len(mismatched)} pipelines")
    sizes = [len(v) for v in returned.values()]
    progress(f"{b.name}: service returned {min(sizes)}-{max(sizes)} runs per pipeline")


def run_backend(b: Backend, cfg: Config) -> Outcome:
    out = Outcome(b.name)
    b.open()
    try:
        store = Store(b.url, auto_migrate=True)
        ws_id, pipeline_ids, keys = create_pipelines(store, cfg.pipelines)
        specs = plan_runs(cfg, random.Random(cfg.seed))
        progress(f"{b.name}: inserting {len(specs):,} runs")
        out.rates["runs"] = fill_runs(b, store, specs, ws_id, pipeline_ids)
        out.rates.update(fill_results(b, store, specs, cfg, {"tests": plan_tests(cfg, ws_id), "ws_id": ws_id}))
        with b.raw_connection() as raw:
            out.version = b.version(raw)
            b.after_fill(raw)
            out.distinct_tests = int(b.fetch(raw, "SELECT count(*) FROM cases", ())[0][0])
        progress(f"{b.name}: querying")
        bench_queries(b, store, keys, cfg, ws_id, out)
        store.dispose()
    finally:
        b.close()
    return out


# -- report --------------------------------------------------------------------------------------

BASELINES = {
    "runs": ("-", "-"),
    "writer": ("139k (1 txn, 3 idx); 193k (100-row txns, append-order idx)", "170k (COPY, 3 idx)"),
    "raw_executemany": ("240k-310k (no idx)", "125k"),
    "raw_copy": ("-", "440k text, 576k binary"),
    "ratio": ("≥ 50%", "≥ 50%"),
    "ingest": ("~55k (100-case runs, 10M store)", "-"),
    "service": ("target < 5 ms", "target < 5 ms"),
    "raw_service_sql": ("-", "-"),
    "raw_lean": ("0.04 ms", "0.3 ms (measured 0.12-0.27)"),
}


def metric_rows(cfg: Config, outcomes: dict[str, Outcome]) -> list[list[str]]:
    labels = {
        "runs": "runs, bulk fast path (executemany / COPY), rows/s",
        "writer": f"case results via `ResultWriter`, {cfg.chunk_runs} runs per txn, rows/s",
        "raw_executemany": "ceiling: raw `executemany`, same tuples, rows/s",
        "raw_copy": "ceiling: raw text `COPY`, same tuples, rows/s",
        "ratio": "`ResultWriter` / best ceiling",
        "ingest": f"`ResultWriter`, 1 txn per {cfg.per_run}-result run (ingest shape), rows/s",
        "service": "`list_executions` failed, 50 newest (median / p95)",
        "raw_service_sql": "service's SQL via driver (median / p95)",
        "raw_lean": "hand-written SQL via driver (median / p95)",
    }
    rows = []
    for key, label in labels.items():
        cells = [label]
        for name, idx in (("SQLite", 0), ("PostgreSQL", 1)):
            o = outcomes.get(name)
            cells += [cell(key, o), BASELINES[key][idx]] if o else ["-", BASELINES[key][idx]]
        rows.append(cells)
    return rows


def cell(key: str, o: Outcome) -> str:
    if key in o.latencies:
        median, p95 = o.latencies[key]
        return f"{median:.3f} / {p95:.3f} ms"
    if key == "ratio":
        best = max(v for k, v in o.rates.items() if k.startswith("raw_") and v)
        return f"{o.rates['writer'] / best:.0%}"
    return fmt_rate(o.rates.get(key))


def report(cfg: Config, outcomes: dict[str, Outcome]) -> str:
    info = machine_info(**{name: o.version for name, o in outcomes.items() if name != "SQLite"})
    tests = ", ".join(f"{o.distinct_tests:,} ({name})" for name, o in outcomes.items())
    header = ["metric", "SQLite", "baseline", "PostgreSQL", "baseline"]
    return "\n".join([
        "## Store benchmark (`benchmarks/bench_store.py`)",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "",
        f"Sizes: {cfg.runs:,} runs over {cfg.pipelines} pipelines and {DAYS} days; "
        f"{cfg.runs * cfg.per_run:,} case results ({cfg.per_run} per run); distinct tests: {tests}.",
        "",
        markdown_table(header, metric_rows(cfg, outcomes)),
        "",
        "Runs are bulk-inserted into the real `test_runs` table (the product creates them one at a time with "
        "`create_run`). Ceiling tables have the columns, primary key and unique index of `case_results` but no "
        "foreign keys. Service timings include opening the read session; PostgreSQL is ANALYZEd after the fill, "
        "SQLite is not (the product never runs ANALYZE).",
    ])


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, list[Backend]]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--results", type=int, default=2_000_000, help="case results in total (per run = results/runs)")
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--pg-url", default=PG_BASE, help="PostgreSQL database; a fresh schema is created and dropped")
    p.add_argument("--pipelines", type=int, default=200)
    p.add_argument("--tests", type=int, default=20_000, help="distinct tests, split evenly across pipelines")
    p.add_argument("--chunk-runs", type=int, default=500, help="runs per transaction during the bulk fill")
    p.add_argument("--ingest-sample", type=int, default=1000, help="newest runs written one transaction each")
    p.add_argument("--calls", type=int, default=200, help="timed query calls per variant")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    cfg = Config(a.runs, a.results, a.pipelines, a.tests, a.chunk_runs, a.ingest_sample, a.calls, a.seed)
    backends: list[Backend] = []
    if a.backend in ("sqlite", "both"):
        backends.append(SqliteBackend())
    if a.backend in ("postgresql", "both"):
        backends.append(PostgresBackend(a.pg_url))
    return cfg, backends


def main(argv: Sequence[str] | None = None) -> None:
    cfg, backends = parse_args(argv)
    outcomes = {b.name: run_backend(b, cfg) for b in backends}
    print(report(cfg, outcomes))


if __name__ == "__main__":
    main()
