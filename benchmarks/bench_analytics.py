"""Analytics benchmark: a store of 10M case results (100k runs, 200 pipelines, 20k tests, 90 days) built with
raw inserts/COPY, its runs queued and folded into the rollups by the product's own fold (in batches), then
each analytics question timed beside a naive query over the raw results; ingest through the product with
the runs queued for the fold, without any analytics, and with the old fold at each run's end, alternating;
the catch-up fold of the queued runs (one at a time and in batches) and the first answer after it."""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_store import PostgresBackend, SqliteBackend, uuid7_at
from common import Stopwatch, analytics_queue_off, fmt_rate, latency_ms, machine_info, markdown_table, rate
from sqlalchemy import text

from testledger.analytics import fold as folding
from testledger.caseid import case_id, reported_identity
from testledger.db import records
from testledger.db.bulk import ResultWriter
from testledger.db.driver_sql import DriverSql
from testledger.db.engine import Store
from testledger.db.records import ensure_pipeline, ensure_workspace
from testledger.db.rows import CASE_COLUMNS, RESULT_COLUMNS, NewCase, NewResult, sqlite_datetime
from testledger.db.types import utcnow
from testledger.services.analytics.clusters import failure_clusters
from testledger.services.analytics.compare import compare_runs
from testledger.services.analytics.flaky import flaky_tests
from testledger.services.analytics.health import pipeline_health
from testledger.services.analytics.history import test_history
from testledger.services.analytics.slow import slow_tests

WORKSPACE = "BENCH"
DAYS = 90
RUN_COLUMNS = (
    "id", "key", "workspace_id", "test_definition_id", "pipeline_version", "status", "result", "created_at",
    "started_at", "completed_at", "duration_ms", "environment", "triggered_by", "trigger", "revision", "branch",
    "cancel_requested", "tests", "passed", "failed", "errors", "skipped", "flaky", "infra_faults",
)
BRANCHES = ("main", "main", "main", "release/2.4", "feature/login")
TARGETS = {"health (one pipeline)": 50, "health (all pipelines)": 50, "flaky, 14 days": (400, 600),
           "slowest 20 by p95, 7 days": 500, "compare with last green": 100}


def log(message: str) -> None:
    sys.stderr.write(f"[{datetime.now():%H:%M:%S}] {message}\n")
    sys.stderr.flush()


class Tests:
    """The tests of each pipeline with their character: duration, and flaky (2%), broken (0.3%) or sound."""

    def __init__(self, pipelines: int, per_pipeline: int, workspace_id: int, rng: random.Random) -> None:
        self.cases: list[list[NewCase]] = []
        self.kind: dict[int, str] = {}
        self.mu: dict[int, float] = {}
        for p in range(pipelines):
            cases = []
            for t in range(per_pipeline):
                classname, name = f"tests.pipe{p:03d}.test_mod{t // 10}", f"test_case_{t}"
                identity = reported_identity(f"pipe-{p:03d}", classname, name)
                c = NewCase(id=case_id(workspace_id, identity), identity=identity, kind="reported", name=name,
                            suite=f"pipe-{p:03d}", classname=classname)
                roll = rng.random()
                self.kind[c.id] = "flaky" if roll < 0.02 else "broken" if roll < 0.023 else "sound"
                self.mu[c.id] = rng.uniform(1.5, 7.5)
                cases.append(c)
            self.cases.append(cases)


def outcome(kind: str, rng: random.Random, outage: bool) -> tuple[str, bool, str | None]:
    """(status, passed on retry, message)."""
    if outage:
        return "error", False, f"ConnectionRefusedError: [Errno 111] Connection refused: 10.0.{rng.randrange(255)}.7"
    if kind == "broken" or (kind == "flaky" and rng.random() < 0.2) or rng.random() < 0.001:
        if kind == "flaky" and rng.random() < 0.5:
            return "passed", True, None
        return "failed", False, f"expected status 200 but got 503 from /api/v1/orders/{rng.randrange(10**6)}"
    return "passed", False, None


def build_chunk(specs: list[dict[str, Any]], tests: Tests, ws: int, pipeline_ids: list[uuid.UUID], sqlite: bool,
                rng: random.Random) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    conv: Callable[[Any], Any] = (lambda v: v.hex if isinstance(v, uuid.UUID) else sqlite_datetime(v)
                                  if isinstance(v, datetime) else v) if sqlite else (lambda v: v)
    run_rows, result_rows = [], []
    for s in specs:
        counts = {"passed": 0, "failed": 0, "error": 0, "flaky": 0}
        at = s["started"]
        for idx, case in enumerate(tests.cases[s["pipeline"]]):
            status, retried, message = outcome(tests.kind[case.id], rng, s["outage"])
            duration = round(rng.lognormvariate(tests.mu[case.id], 0.35), 3)
            counts[status] += 1
            counts["flaky"] += retried
            bad = status != "passed"
            result_rows.append(tuple(conv(v) for v in (
                s["id"], idx, None, case.id, status, duration, message,
                ("ConnectionRefusedError" if s["outage"] else "AssertionError") if bad else None,
                ("infrastructure" if s["outage"] else "assertion") if bad else None,
                'File "tests/test_orders.py", line 12, in test_checkout\n' if bad else None, None, None, None,
                2 if retried else 1, None, int(retried) if sqlite else retried, "gw0", at, at, None, None)))
        n = len(tests.cases[s["pipeline"]])
        result = "error" if s["outage"] else "failed" if counts["failed"] else "passed"
        run_rows.append(tuple(conv(v) for v in (
            s["id"], f"{WORKSPACE}-{s['created']:%m%d}-{s['number']}", ws, pipeline_ids[s["pipeline"]], 0,
            "completed", result, s["created"], s["started"], s["started"] + timedelta(minutes=5),
            int(rng.lognormvariate(11, 0.4)), s["env"], "ci-bot", "api", s["revision"], s["branch"],
            False if not sqlite else 0, n, counts["passed"], counts["failed"], counts["error"], 0, counts["flaky"],
            counts["error"])))
    return run_rows, result_rows


def plan(runs: int, pipelines: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    end = datetime.now(UTC) - timedelta(minutes=30)
    step = DAYS * 86_400 / runs
    revision = {p: f"{rng.getrandbits(160):040x}" for p in range(pipelines)}
    for i in range(runs):
        created = end - timedelta(seconds=(runs - i) * step)
        p = rng.randrange(pipelines)
        if rng.random() > 0.2:  # one run in five re-runs the pipeline's last revision
            revision[p] = f"{rng.getrandbits(160):040x}"
        yield {"id": uuid7_at(created, rng), "number": i + 1, "pipeline": p, "created": created,
               "started": created + timedelta(seconds=5), "revision": revision[p], "branch": rng.choice(BRANCHES),
               "env": rng.choice(("ci", "ci", "staging")), "outage": rng.random() < 0.003}


@contextmanager
def raw_cursor(store: Store) -> Iterator[Any]:
    with store.write() as db:
        yield db.connection().connection.driver_connection


def insert_rows(store: Store, sqlite: bool, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    with raw_cursor(store) as raw:
        if sqlite:
            raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                            rows)
            return
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def cpu() -> float:
    """This process's CPU seconds (user + system): less disturbed by the other load than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def queue(store: Store, run_ids: list[uuid.UUID]) -> None:
    """Queue runs for the fold as the product does when they end (in the order given)."""
    with store.write() as db:
        sql = DriverSql.of(db)
        for run_id in run_ids:
            sql.execute(sql.enqueue, (sql.uuid_in(run_id),))


def fill(store: Store, args: argparse.Namespace, rng: random.Random) -> tuple[Tests, Stopwatch, Stopwatch]:
    sqlite = store.dialect == "sqlite"
    with store.write() as db:
        ws = ensure_workspace(db, key=WORKSPACE).id
        pipeline_ids = [ensure_pipeline(db, workspace=ensure_workspace(db, key=WORKSPACE), key=f"pipe-{p:03d}").id
                        for p in range(args.pipelines)]
    tests = Tests(args.pipelines, args.tests // args.pipelines, ws, rng)
    now = sqlite_datetime(utcnow()) if sqlite else utcnow()
    insert_rows(store, sqlite, "cases", CASE_COLUMNS, [
        (c.id, ws, c.identity, c.kind, None, c.name, c.suite, c.classname, now) for cs in tests.cases for c in cs])
    raw_sw, rollup_sw = Stopwatch(), Stopwatch()
    chunk: list[dict[str, Any]] = []
    done = 0
    for spec in plan(args.runs, args.pipelines, rng):
        chunk.append(spec)
        if len(chunk) == args.chunk or spec["number"] == args.runs:
            run_rows, result_rows = build_chunk(chunk, tests, ws, pipeline_ids, sqlite, rng)
            with raw_sw.timing():
                insert_rows(store, sqlite, "test_runs", RUN_COLUMNS, run_rows)
                insert_rows(store, sqlite, "case_results", RESULT_COLUMNS, result_rows)
            if not sqlite and spec["number"] in (args.chunk, args.chunk * 10):
                analyze(store)  # as autovacuum would: the fold's plans need statistics of the growing tables
            with rollup_sw.timing():  # the product's fold, in batches, in the order the runs were made
                queue(store, [s["id"] for s in chunk])
                with store.read() as db:
                    folding.catch_up(db)
            done += len(result_rows)
            chunk = []
            if spec["number"] % (args.chunk * 10) == 0 or spec["number"] == args.runs:
                log(f"{spec['number']:,} runs, {done:,} results (raw {raw_sw.seconds:.0f}s, "
                    f"fold {rollup_sw.seconds:.0f}s)")
    if not sqlite:
        analyze(store, vacuum=True)
    return tests, raw_sw, rollup_sw


def analyze(store: Store, *, vacuum: bool = False) -> None:
    """What autovacuum does to a store in use: statistics, and (at the end of the fill) the visibility map
    index-only scans need and the dead rows of the fold's upserts cleared."""
    tables = ("test_runs, case_results, cases, test_days, case_failures, flaky_evidence, test_branch_states, "
              "failure_clusters, analytics_queue")
    # Only this schema's tables: a bare ANALYZE takes locks across every schema of the shared database.
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"{'VACUUM ANALYZE' if vacuum else 'ANALYZE'} {tables}")


#: The ingest modes compared: runs queued for the fold (the product), no analytics at all, and the
#: fold at each run's end in its transaction (what the product did before the queue).
MODES = ("queued", "no analytics", "fold at run end")


def ingest(store: Store, tests: Tests, count: int, rng: random.Random) -> dict[str, dict[str, float]]:
    """New runs of 100 results through the product's write path (create, write results, complete), the
    three MODES in turn so each sees the same store and the same noise: results/s by wall and by CPU."""
    wall = dict.fromkeys(MODES, 0.0)
    used = dict.fromkeys(MODES, 0.0)
    results = dict.fromkeys(MODES, 0)
    for i in range(count):
        mode = MODES[i % len(MODES)]
        cases, batch = new_results(tests, rng)
        start, start_cpu = time.perf_counter(), cpu()
        with analytics_queue_off() if mode == "no analytics" else nullcontext(), store.write() as db:
            write_run(db, cases, batch, rng)
            if mode == "fold at run end":
                folding.fold_queued(db.connection(), commit=False)
        wall[mode] += time.perf_counter() - start
        used[mode] += cpu() - start_cpu
        results[mode] += len(batch)
        if mode == "queued":  # folded outside the timing (its cost is measured by `catch_up`), so
            with store.read() as db:  # the next "fold at run end" run folds only itself
                folding.catch_up(db)
    return {mode: {"wall": rate(results[mode], wall[mode]), "cpu": rate(results[mode], used[mode])}
            for mode in MODES}


def catch_up(store: Store, tests: Tests, runs: int, rng: random.Random) -> dict[str, float]:
    """The fold's cost per run, one run per transaction against batches, and the first answer (flaky,
    14 days) after `runs` runs were queued, beside the same answer with nothing queued."""
    out: dict[str, float] = {}
    if not runs:
        return out
    for label, batch_runs in (("one at a time", 1), ("in batches", folding.BATCH_RUNS)):
        ingest_queued(store, tests, runs, rng)
        folding.BATCH_RUNS, kept = batch_runs, folding.BATCH_RUNS
        start, start_cpu = time.perf_counter(), cpu()
        try:
            with store.read() as db:
                done = folding.catch_up(db)
        finally:
            folding.BATCH_RUNS = kept
        assert done.runs == runs, done
        out[f"fold {label}, ms a run (wall)"] = (time.perf_counter() - start) * 1000 / runs
        out[f"fold {label}, ms a run (CPU)"] = (cpu() - start_cpu) * 1000 / runs
    ingest_queued(store, tests, runs, rng)
    for label in (f"first flaky answer after {runs} queued runs", "the same answer, nothing queued"):
        start = time.perf_counter()
        with store.read() as db:
            flaky_tests(db, workspace=WORKSPACE, days=14)
        out[f"{label}, ms"] = (time.perf_counter() - start) * 1000
    return out


def ingest_queued(store: Store, tests: Tests, runs: int, rng: random.Random) -> None:
    for _ in range(runs):
        with store.write() as db:
            write_run(db, *new_results(tests, rng), rng)


def new_results(tests: Tests, rng: random.Random) -> tuple[list[NewCase], list[NewResult]]:
    """A run's worth of results: every test of one pipeline, with its character's outcome and duration."""
    cases = tests.cases[rng.randrange(len(tests.cases))]
    batch = []
    for idx, c in enumerate(cases):
        status, retried, message = outcome(tests.kind[c.id], rng, False)
        batch.append(NewResult(idx=idx, case=c, status=status, duration_ms=rng.lognormvariate(tests.mu[c.id], 0.35),
                               message=message, error_type="AssertionError" if message else None,
                               failure_category="assertion" if message else None, flaky=retried))
    return cases, batch


def write_run(db: Any, cases: list[NewCase], batch: list[NewResult], rng: random.Random) -> None:
    """One run through the product's write path: create it, write its results, complete it."""
    run = records.create_run(db, workspace=WORKSPACE, actor="bench", environment="ci", allowed_environments=["ci"],
                             pipeline_key=cases[0].suite, revision=f"{rng.getrandbits(64):016x}", branch="main",
                             started=True)
    writer = ResultWriter(db, run_id=run.id, workspace_id=run.workspace_id, now=utcnow())
    for r in batch:
        writer.add(r)
    writer.flush()
    db.refresh(run)
    records.transition(db, workspace=WORKSPACE, key=run.key, to="completed", run=run)


def timed(fn: Callable[[], Any], calls: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return latency_ms(samples)


def questions(store: Store, calls: int) -> dict[str, tuple[float, float]]:
    with store.read() as db:
        # The newest failed run of a pipeline and branch that also have a green run (some never pass).
        green = db.execute(text("SELECT test_definition_id, branch FROM test_runs WHERE result = 'passed' "
                                "ORDER BY created_at LIMIT 1")).one()
        newest = db.execute(text("SELECT key FROM test_runs WHERE result = 'failed' AND test_definition_id = :p "
                                 "AND branch = :b ORDER BY created_at DESC LIMIT 1"),
                            {"p": green[0], "b": green[1]}).scalar_one()
        some_test = db.execute(text("SELECT classname || '::' || name FROM cases LIMIT 1")).scalar_one()
    asks: dict[str, Callable[[Any], Any]] = {
        "health (one pipeline)": lambda db: pipeline_health(db, workspace=WORKSPACE, pipeline="pipe-007"),
        "health (all pipelines)": lambda db: pipeline_health(db, workspace=WORKSPACE),
        "flaky, 14 days": lambda db: flaky_tests(db, workspace=WORKSPACE, days=14),
        "slowest 20 by p95, 7 days": lambda db: slow_tests(db, workspace=WORKSPACE, days=7, limit=20),
        # Filtered by environment or branch, from the raw results of the matching runs (no rollup has them).
        "slowest 20 by p95, 7 days, staging": lambda db: slow_tests(db, workspace=WORKSPACE, environment="staging",
                                                                    days=7, limit=20),
        "slowest 20 by p95, 7 days, one branch": lambda db: slow_tests(db, workspace=WORKSPACE,
                                                                       branch="feature/login", days=7, limit=20),
        "compare with last green": lambda db: compare_runs(db, workspace=WORKSPACE, run=newest),
        "failure clusters, 7 days": lambda db: failure_clusters(db, workspace=WORKSPACE, days=7),
        "test history, 50 results": lambda db: test_history(db, workspace=WORKSPACE, test=some_test),
    }
    out = {}
    for name, ask in asks.items():
        with store.read() as db:
            out[name] = timed(lambda ask=ask, db=db: ask(db), calls)
        log(f"{name}: {out[name][0]:.1f} ms")
    return out


NAIVE_FLAKY = (
    "SELECT cr.case_id, count(DISTINCT r.revision) FROM case_results cr JOIN test_runs r ON r.id = cr.run_id "
    "WHERE r.created_at >= :since GROUP BY cr.case_id, r.revision "
    "HAVING sum(CASE WHEN cr.status = 'passed' THEN 1 ELSE 0 END) > 0 "
    "AND sum(CASE WHEN cr.status IN ('failed', 'error') THEN 1 ELSE 0 END) > 0"
)
NAIVE_P95 = {
    "postgresql": "SELECT cr.case_id, percentile_cont(0.95) WITHIN GROUP (ORDER BY cr.duration_ms) AS p FROM "
                  "case_results cr JOIN test_runs r ON r.id = cr.run_id WHERE r.created_at >= :since "
                  "GROUP BY cr.case_id ORDER BY p DESC LIMIT 20",
    "sqlite": "SELECT case_id, max(d) AS p FROM (SELECT cr.case_id, cr.duration_ms AS d, percent_rank() OVER "
              "(PARTITION BY cr.case_id ORDER BY cr.duration_ms) AS pr FROM case_results cr JOIN test_runs r ON "
              "r.id = cr.run_id WHERE r.created_at >= :since) WHERE pr <= 0.95 GROUP BY case_id ORDER BY p DESC "
              "LIMIT 20",
}


def naive(store: Store) -> dict[str, tuple[float, float]]:
    out = {}
    since = {"flaky, 14 days": 14, "slowest 20 by p95, 7 days": 7}
    for name, sql in (("flaky, 14 days", NAIVE_FLAKY), ("slowest 20 by p95, 7 days", NAIVE_P95[store.dialect])):
        with store.read() as db:
            arg = utcnow() - timedelta(days=since[name])
            param: Any = sqlite_datetime(arg) if store.dialect == "sqlite" else arg
            out[name] = timed(lambda db=db, sql=sql, param=param: db.execute(text(sql), {"since": param}).all(), 1)
        log(f"naive {name}: {out[name][0]:.0f} ms")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 100k runs of 100 results; 0.01 for a smoke run")
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--tests", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1000, help="runs per fill transaction")
    parser.add_argument("--ingest-runs", type=int, default=600,
                        help="runs written through the product, a third in each mode (queued, none, fold at end)")
    parser.add_argument("--catch-up-runs", type=int, default=200,
                        help="runs queued before each catch-up measurement")
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--existing", default=None,
                        help="only time the questions on a store this script built before (its URL; migrated first)")
    parser.add_argument("--keep-sqlite", default=None, help="copy the SQLite store, as filled, to this path")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    args.runs = max(args.pipelines, int(100_000 * args.scale))
    backends = {"sqlite": [SqliteBackend()], "postgresql": [PostgresBackend(args.pg_url)],
                "both": [SqliteBackend(), PostgresBackend(args.pg_url)]}[args.backend]
    print(f"## Analytics benchmark\n\n{', '.join(f'{k}: {v}' for k, v in machine_info().items())}; "
          f"{args.runs:,} runs x {args.tests // args.pipelines} results = {args.runs * args.tests // args.pipelines:,} "
          f"case results, {args.pipelines} pipelines, {args.tests:,} tests, {DAYS} days\n")
    if args.existing:
        start = time.perf_counter()
        store = Store(args.existing, auto_migrate=True)
        log(f"store opened (and migrated) in {time.perf_counter() - start:.1f} s")
        asked = questions(store, args.calls)
        print(markdown_table(("question", "median", "p95"), [[name, f"{m:.1f} ms", f"{p:.1f} ms"]
                                                             for name, (m, p) in asked.items()]))
        return
    for backend in backends:
        backend.open()
        try:
            rng = random.Random(7)
            store = Store(backend.url, auto_migrate=True)
            log(f"{backend.name}: filling")
            tests, raw_sw, rollup_sw = fill(store, args, rng)
            if args.keep_sqlite and isinstance(backend, SqliteBackend):  # as filled (`--existing` reads it)
                with closing(sqlite3.connect(backend.path)) as copying:
                    copying.execute("VACUUM INTO ?", (args.keep_sqlite,))
            asked, baseline = questions(store, args.calls), naive(store)
            speeds = ingest(store, tests, args.ingest_runs, rng)
            caught = catch_up(store, tests, args.catch_up_runs, rng)
            store.dispose()
        finally:
            backend.close()
        rows: list[list[object]] = []
        for name, (median, p95) in asked.items():
            target = TARGETS.get(name)
            if isinstance(target, tuple):
                target = target[0] if backend.name == "SQLite" else target[1]
            base = baseline.get(name)
            verdict = "-" if not target else "met" if median < target else "MISSED"
            rows.append([name, f"{median:.1f} ms", f"{p95:.1f} ms", f"{base[0]:,.0f} ms" if base else "-",
                         f"< {target} ms" if target else "-", verdict])
        print(f"### {backend.name}\n")
        print(markdown_table(("question", "median", "p95", "naive query on raw results", "target", ""), rows))
        print(f"\nFill: raw inserts {rate(args.runs * 100, raw_sw.seconds):,.0f} results/s ({raw_sw.seconds:.0f} s); "
              f"the fold, in batches of up to {folding.BATCH_RUNS} queued runs, {rollup_sw.seconds:.0f} s "
              f"({args.runs / rollup_sw.seconds:,.0f} runs/s, {rollup_sw.seconds * 1000 / args.runs:.2f} ms a run).")
        if args.ingest_runs:
            none = speeds["no analytics"]
            print(f"\nIngest through the product ({args.ingest_runs} runs of 100 results, the modes in turn), "
                  "results/s by wall time and by this process's CPU time:\n")
            print(markdown_table(("mode", "wall", "vs no analytics", "CPU", "vs no analytics"), [
                [mode, fmt_rate(v["wall"]), f"{(v['wall'] / none['wall'] - 1) * 100:+.0f}%", fmt_rate(v["cpu"]),
                 f"{(v['cpu'] / none['cpu'] - 1) * 100:+.0f}%"] for mode, v in speeds.items()]))
        if caught:
            print("\nCatch-up fold and the first answer after it:\n")
            print(markdown_table(("measurement", "value"), [[k, f"{v:.2f}"] for k, v in caught.items()]))
        print()


if __name__ == "__main__":
    main()
