"""Ingest benchmark: JUnit reports through `testledger ingest` (SQLite, PostgreSQL) beside parser/store ceilings."""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import itertools
import json
import os
import pstats
import random
import shutil
import sqlite3
import statistics
import subprocess
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
from xml.sax.saxutils import escape, quoteattr

import ingest_floor
import psycopg
from common import analytics_queue_off, byte_compile, fmt_rate, machine_info, markdown_table, rate
from lxml import etree
from sqlalchemy.engine import make_url

import testledger
from testledger.caseid import case_id, reported_identity
from testledger.db import records as runs
from testledger.db.engine import Store
from testledger.db.records import ensure_pipeline, ensure_workspace
from testledger.db.rows import CASE_COLUMNS, RESULT_COLUMNS, sqlite_datetime
from testledger.failures import categorise
from testledger.ingest import parse_process
from testledger.ingest.sources import expand_sources
from testledger.schemas import IngestOptions
from testledger.services.ingest import ingest_files
from testledger.settings import get_settings

WORKSPACE = "WKS"  # the CLI's default workspace, so CLI and in-process ingests see the same cases
PIPELINE = "bench"
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PER_SUITE = 100
WRITE_BATCH = 5000  # ResultWriter's batch, used for the raw ceilings too
BIG_PIPELINES = 200
BIG_DAYS = 90
ALLURE_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "testledger-bench" / "allure"
RUN_COLUMNS = (
    "id", "key", "workspace_id", "test_definition_id", "pipeline_version", "status", "result", "created_at",
    "started_at", "completed_at", "duration_ms", "environment", "triggered_by", "trigger", "revision", "branch",
    "executor", "cancel_requested", "tests", "passed", "failed", "errors", "skipped", "flaky", "infra_faults",
)
FRAMES = (
    ("app/orders/service.py", "place_order", "return self._gateway.charge(order.total, currency=order.currency)"),
    ("app/http/client.py", "request", "response = self._session.send(prepared, timeout=self.timeout)"),
    ("tests/test_orders.py", "test_checkout", "assert resp.status_code == 200, resp.text"),
    ("app/db/repository.py", "<listcomp>", "return [self._load(row) for row in cursor.fetchall()]"),
    ("site-packages/_pytest/python.py", "pytest_pyfunc_call", "result = testfunction(**testargs)"),
    ("app/inventory/reserve.py", "reserve", "raise StockError(f\"sku {sku!r} has {left} < {qty}\")"),
)
ERRORS = (
    ("ConnectionRefusedError", "[Errno 111] Connection refused: 'db:5432'"),
    ("TimeoutError", "operation timed out after 30s waiting for <queue 'orders'>"),
    ("KeyError", "'customer_id'"),
)


@dataclass(slots=True)
class Spec:
    """One synthetic test case: what the JUnit, allure and raw-tuple writers all render."""

    suite: str
    classname: str
    name: str
    status: str = "passed"
    seconds: float = 0.0
    message: str | None = None
    error_type: str | None = None
    trace: str | None = None
    stdout: str | None = None


@dataclass
class Row:
    """One measured line of the report."""

    what: str
    backend: str
    cases: int
    seconds: float
    rss_mb: float | None = None
    target_rate: float | None = None
    target_rss: float | None = None
    baseline: str = ""

    @property
    def per_second(self) -> float:
        return rate(self.cases, self.seconds)

    def verdict(self) -> str:
        if self.target_rate is None and self.target_rss is None:
            return ""
        ok = (self.target_rate is None or self.per_second >= self.target_rate) and (
            self.target_rss is None or (self.rss_mb is not None and self.rss_mb < self.target_rss)
        )
        return "yes" if ok else "**no**"

    def target(self) -> str:
        parts = [f"≥{fmt_rate(self.target_rate)}"] if self.target_rate else []
        parts += [f"<{self.target_rss:.0f} MB"] if self.target_rss else []
        return ", ".join(parts)


@dataclass
class Child:
    seconds: float
    rss_mb: float
    output: str


@dataclass
class Context:
    args: argparse.Namespace
    work: Path
    specs: list[Spec] = field(default_factory=list)
    big_file: Path = Path()
    folder: Path = Path()
    sizes: dict[str, str] = field(default_factory=dict)
    stores: Stores | None = None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- synthetic data ---------------------------------------------------------------------------
def make_specs(count: int, seed: int) -> list[Spec]:
    """`count` cases in suites of 100: 4% failed, 1% errors with 1-3 KB tracebacks, 2% skipped, 10% stdout."""
    rng = random.Random(seed)
    specs = []
    for g in range(count):
        module = f"tests.pkg{g // 10_000:02d}.test_mod{g // PER_SUITE:04d}"
        spec = Spec(module, f"{module}.TestGroup{g % 7}", f"test_case_{g:06d}[param-{g % 13}]")
        spec.seconds = round(rng.expovariate(40), 4)
        roll = rng.random()
        if roll < 0.05:
            _fail(spec, rng, error=roll < 0.01)
        elif roll < 0.07:
            spec.status, spec.message = "skipped", "needs a GPU runner"
        if rng.random() < 0.10:
            lines = rng.randint(8, 24)
            spec.stdout = "".join(f"{g}:{n} INFO request id={rng.getrandbits(64):x} took {n * 3}ms\n"
                                  for n in range(lines))
        specs.append(spec)
    return specs


def _fail(spec: Spec, rng: random.Random, *, error: bool) -> None:
    if error:
        spec.status = "error"
        spec.error_type, spec.message = rng.choice(ERRORS)
    else:
        spec.status, spec.error_type = "failed", "AssertionError"
        code, order = rng.choice((404, 409, 500, 503)), rng.randint(1, 9999)
        spec.message = f"expected status 200 but got {code} for /api/v1/orders/{order}"
    frames = ["Traceback (most recent call last):"]
    target = rng.randint(1000, 3000)
    while sum(map(len, frames)) < target:
        path, func, code = rng.choice(FRAMES)
        frames.append(f'  File "/builds/shop/{path}", line {rng.randint(10, 900)}, in {func}\n    {code}')
    frames.append(f"{spec.error_type}: {spec.message}")
    spec.trace = "\n".join(frames)


def case_xml(spec: Spec) -> str:
    head = f"<testcase classname={quoteattr(spec.classname)} name={quoteattr(spec.name)} time=\"{spec.seconds}\""
    body = ""
    if spec.status in ("failed", "error"):
        tag = "failure" if spec.status == "failed" else "error"
        body += (f"<{tag} message={quoteattr(spec.message or '')} type=\"{spec.error_type}\">"
                 f"{escape(spec.trace or '')}</{tag}>")
    elif spec.status == "skipped":
        body += f"<skipped message={quoteattr(spec.message or '')}/>"
    if spec.stdout:
        body += f"<system-out>{escape(spec.stdout)}</system-out>"
    return f"    {head}>{body}</testcase>\n" if body else f"    {head}/>\n"


def write_junit(path: Path, specs: Sequence[Spec]) -> None:
    """A `<testsuites>` document with one `<testsuite>` per 100 cases."""
    counts = {s: sum(1 for c in specs if c.status == s) for s in ("failed", "error", "skipped")}
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(f'<testsuites name="bench" tests="{len(specs)}" failures="{counts["failed"]}" '
                  f'errors="{counts["error"]}" time="{sum(c.seconds for c in specs):.3f}">\n')
        for start in range(0, len(specs), PER_SUITE):
            chunk = specs[start:start + PER_SUITE]
            out.write(f'  <testsuite name="{chunk[0].suite}" tests="{len(chunk)}" hostname="ci-runner-7" '
                      f'timestamp="2025-06-01T12:00:00">\n')
            out.writelines(case_xml(c) for c in chunk)
            out.write("  </testsuite>\n")
        out.write("</testsuites>\n")


def generate(ctx: Context) -> None:
    args = ctx.args
    ctx.specs = make_specs(max(args.cases, args.files * args.per_file), args.seed)
    ctx.big_file = ctx.work / "big" / "TEST-all.xml"
    ctx.big_file.parent.mkdir()
    write_junit(ctx.big_file, ctx.specs[: args.cases])
    ctx.folder = ctx.work / "reports"
    ctx.folder.mkdir()
    for n in range(args.files):
        write_junit(ctx.folder / f"TEST-{n:05d}.xml", ctx.specs[n * args.per_file:(n + 1) * args.per_file])
    folder_bytes = sum(p.stat().st_size for p in ctx.folder.iterdir())
    ctx.sizes["one file"] = f"{args.cases:,} cases, {ctx.big_file.stat().st_size / 1e6:.1f} MB"
    ctx.sizes["folder"] = f"{args.files:,} files x {args.per_file} cases, {folder_bytes / 1e6:.1f} MB in all"
    statuses = [s.status for s in ctx.specs[: args.cases]]
    ctx.sizes["case mix"] = ", ".join(f"{statuses.count(s) / len(statuses):.1%} {s}"
                                      for s in ("failed", "error", "skipped")) + ", " + (
        f"{sum(1 for s in ctx.specs[: args.cases] if s.stdout) / len(statuses):.1%} with system-out")


def folder_files(ctx: Context) -> list[Path]:
    return sorted(ctx.folder.iterdir())


# -- child processes --------------------------------------------------------------------------
# The launcher is a small fresh process that spawns the command and reports its wait4 rusage. Spawning straight
# from this (large) process would not do: Linux carries the parent's peak RSS into the child's ru_maxrss at exec.
LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status)}, out)
"""


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 1800) -> Child:
    """Run a command via the launcher: its wall time and peak RSS (the command and its reaped descendants)."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, report.name, *argv],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        out.seek(0)
        text = out.read().decode(errors="replace")
        usage = json.load(report) if proc.returncode == 0 else {"code": proc.returncode}
    if usage["code"]:
        raise RuntimeError(f"{' '.join(argv[:3])} ... exited {usage['code']}:\n{text[-3000:]}")
    return Child(usage["seconds"], usage["maxrss_kb"] / 1024, text)


def testledger_cli() -> list[str]:
    exe = Path(sys.executable).with_name("testledger")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "testledger"]


def cli_ingest(ctx: Context, url: str, sources: Sequence[Path]) -> Child:
    """`testledger ingest SOURCES -p bench -e ci --no-fail` against `url`, in its own process."""
    home = ctx.work / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, TESTLEDGER_HOME=str(home), TESTLEDGER_DATABASE_URL=url, TESTLEDGER_ACTOR="bench")
    argv = [*testledger_cli(), "ingest", *map(str, sources), "-p", PIPELINE, "-e", "ci", "--no-fail"]
    return run_child(argv, env=env)


# -- stores -----------------------------------------------------------------------------------
class Stores:
    """Fresh stores on demand: SQLite files in the work dir, PostgreSQL schemas (all dropped at the end)."""

    def __init__(self, work: Path, pg_base: str) -> None:
        self.dir = work / "stores"
        self.dir.mkdir()
        self.pg_base = pg_base
        self.schemas: list[str] = []
        self.made = 0

    def fresh(self, backend: str, label: str) -> str:
        # Never reuse a URL within the process: the product caches stored case ids per URL (db/bulk.py).
        self.made += 1
        label = f"{label}_{self.made}".lower()  # PostgreSQL folds the unquoted search_path
        if backend == "sqlite":
            return f"sqlite:///{self.dir / label}.db"
        schema = f"bench_ingest_{os.getpid()}_{label}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        return make_url(self.pg_base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )

    def conninfo(self, url: str | None = None) -> str:
        u = make_url(url or self.pg_base)
        parts = [f"host={u.host or '127.0.0.1'}", f"port={u.port or 5432}", f"dbname={u.database}"]
        parts += [f"user={u.username}"] if u.username else []
        parts += [f"password={u.password}"] if u.password else []
        parts += [f"options={u.query['options']}"] if "options" in u.query else []
        return " ".join(parts)

    def discard(self, url: str) -> None:
        u = make_url(url)
        if u.get_backend_name() == "sqlite":
            for suffix in ("", "-wal", "-shm", ".migrate-lock"):
                Path(f"{u.database}{suffix}").unlink(missing_ok=True)
            return
        schema = str(u.query["options"]).split("=", 1)[1]
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.schemas.remove(schema)

    def close(self) -> None:
        if not self.schemas:
            return
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.schemas.clear()

    def size(self, url: str) -> float:
        """Bytes on disk of the store, in GB."""
        u = make_url(url)
        if u.get_backend_name() == "sqlite":
            files = [Path(f"{u.database}{suffix}") for suffix in ("", "-wal")]
            return sum(f.stat().st_size for f in files if f.exists()) / 1e9
        with psycopg.connect(self.conninfo(url)) as conn:
            sql = ("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                   "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'")
            return float(conn.execute(sql).fetchone()[0]) / 1e9  # type: ignore[index]


@contextmanager
def fresh_store(ctx: Context, backend: str, label: str) -> Iterator[tuple[str, Store]]:
    """A migrated, empty store; discarded on exit."""
    assert ctx.stores is not None
    url = ctx.stores.fresh(backend, label)
    store = Store(url, auto_migrate=True)
    try:
        yield url, store
    finally:
        store.dispose()
        ctx.stores.discard(url)


# -- the product path -------------------------------------------------------------------------
def ingest_in_process(store: Store, sources: Sequence[Path], *, run_per_file: bool = False) -> float:
    """Seconds for `ingest_files` inside `Store.write_connection()`, as `testledger ingest` calls it."""
    options = IngestOptions(
        actor="bench", max_report_bytes=get_settings().max_report_bytes, pipeline_key=PIPELINE, environment="ci",
        allowed_environments=("ci",), trigger="api",
        # as `testledger ingest` does with the default TESTLEDGER_PARSE_PROCESS_MIN_BYTES (read once, as a
        # process does: a Settings() per run read the environment again, ~0.1 ms of a 3 ms run)
        parse_process_min_bytes=get_settings().parse_process_min_bytes,
    )
    start = time.perf_counter()
    paths = expand_sources([str(s) for s in sources])
    gc.disable()  # as `testledger ingest` does (the service leaves process-wide switches to its caller)
    try:
        for group in ([p] for p in paths) if run_per_file else [paths]:
            with store.write_connection() as db:
                ingest_files(db, workspace=WORKSPACE, sources=group, options=options)
    finally:
        gc.enable()
    return time.perf_counter() - start


def rollups_off() -> AbstractContextManager[None]:
    """Analytics left out of an ingest (a run that ends is not queued for the fold: one insert), to show
    its share: the product always queues; only this measurement leaves it out."""
    return analytics_queue_off()


def per_run_ms(seconds: float, runs: int) -> str:
    return f"{seconds / runs * 1000:.2f} ms/run"


def small_run_rows(ctx: Context, backend: str) -> list[Row]:
    """Issue 10: --big-runs runs of one 100-case report each into a fresh store, with and without the
    rollup hook, tests new (a new file each run) and known (the same file every run)."""
    args = ctx.args
    new_files = folder_files(ctx)[: args.big_runs]
    known = ctx.work / "known"  # one report under many names (one path would be ingested once)
    known.mkdir(exist_ok=True)
    known_files = [known / f"TEST-{n:05d}.xml" for n in range(len(new_files))]
    for path in known_files:
        shutil.copyfile(new_files[0], path)
    cases = len(new_files) * args.per_file
    rows = []
    for tests, files in (("new", new_files), ("known", known_files)):
        floor_s = floor_small_runs(ctx, backend, files)
        floor_what = "lxml + psycopg (cases executemany, results COPY)" if backend == "postgresql" else "lxml + sqlite3"
        rows.append(Row(f"floor: the same {len(files)} files, {floor_what}, one transaction each, tests {tests}",
                        backend, cases, floor_s, None, None, None, per_run_ms(floor_s, len(files))))
        for hook in ("on", "off"):
            with fresh_store(ctx, backend, f"small_{tests}_{hook}") as (_, store):
                ingest_in_process(store, files[:1], run_per_file=True)  # store, pipeline and first cases made
                with rollups_off() if hook == "off" else contextlib.nullcontext():
                    seconds = ingest_in_process(store, files, run_per_file=True)
                trips = f"; {round_trips(store, files[1:21]):.1f} round trips a run" if backend == "postgresql" else ""
            log(f"{backend} 100-case runs, tests {tests}, rollups {hook}: {per_run_ms(seconds, len(files))}, "
                f"floor {per_run_ms(floor_s, len(files))}{trips}")
            of_floor = f"{floor_s / seconds:.2f}x of the floor{trips}"
            rows.append(Row(f"{len(files)} runs of a 100-case file, tests {tests}, rollup hook {hook}, fresh store",
                            backend, cases, seconds, None, 40_000 if hook == "on" else None, None,
                            f"{per_run_ms(seconds, len(files))}, {of_floor} (target ≤ 2.5 ms/run with the hook)"
                            if hook == "on" else f"{per_run_ms(seconds, len(files))}, {of_floor}"))
    return rows


def floor_small_runs(ctx: Context, backend: str, files: Sequence[Path]) -> float:
    """The floor script's work (ingest_floor.py) for each file in turn, in this process, on one connection:
    one transaction a file (a run), as the 100-case rows do; the first file stored before the clock starts,
    as theirs. On PostgreSQL in a fresh schema, with `ingest_pg`."""
    assert ctx.stores is not None
    if backend == "postgresql":
        url = ctx.stores.fresh("postgresql", "floor_small")
        conn, ingest = ingest_floor.connect_pg(ctx.stores.conninfo(url)), ingest_floor.ingest_pg
    else:
        url = f"sqlite:///{ctx.work / 'floor_small.sqlite'}"
        ctx.stores.discard(url)
        conn, ingest = ingest_floor.connect(str(ctx.work / "floor_small.sqlite")), ingest_floor.ingest
    try:
        return timed_runs(conn, ingest, files)
    finally:
        ctx.stores.discard(url)


def timed_runs(conn: Any, ingest: Callable[[Any, str], None], files: Sequence[Path]) -> float:
    """Seconds for the floor script's work on each file in turn on `conn`, one transaction a file (a run);
    the first file stored before the clock starts, as the product's rows do. Closes `conn`."""
    try:
        ingest(conn, str(files[0]))
        gc.disable()
        start = time.perf_counter()
        for report in files:
            ingest(conn, str(report))
        return time.perf_counter() - start
    finally:
        gc.enable()
        conn.close()


def round_trips(store: Store, files: Sequence[Path]) -> float:
    """Round trips to PostgreSQL a 100-case run takes (libpq's trace: each wait for an answer), over `files`."""
    trace = Path(tempfile.mkstemp(prefix="bench-trace-")[1])
    fd = os.open(trace, os.O_WRONLY | os.O_TRUNC)
    try:
        with store.engine.connect() as conn:  # the pool's one connection, which the runs then use
            conn.connection.driver_connection.pgconn.trace(fd)  # type: ignore[union-attr]
        ingest_in_process(store, files, run_per_file=True)
        with store.engine.connect() as conn:
            conn.connection.driver_connection.pgconn.untrace()  # type: ignore[union-attr]
    finally:
        os.close(fd)
    sides = [line.split("\t")[1] for line in trace.read_text().splitlines() if line.count("\t") >= 2]
    trace.unlink()
    return sum(1 for a, b in itertools.pairwise(sides) if a == "F" and b == "B") / len(files)


FLOOR = Path(__file__).with_name("ingest_floor.py")
FLOOR_TARGETS = {"new": 0.8, "known": 0.9}  # issue 10: the whole `testledger ingest` of the file against the floor
#: Issue 10's absolute targets, in cases/s: the service's ("ingest_files") and the whole command's.
SERVICE_TARGETS = {("sqlite", "file", "new"): 100_000, ("sqlite", "file", "known"): 120_000,
                   ("postgresql", "file", "new"): 80_000, ("postgresql", "file", "known"): 100_000,
                   ("sqlite", "folder", "new"): 75_000, ("sqlite", "folder", "known"): 75_000}
CLI_TARGETS = {("sqlite", "file", "new"): 80_000, ("sqlite", "file", "known"): 80_000}


def floor_rows(ctx: Context, backend: str) -> list[Row]:
    """The one big file and the folder (one run), through `testledger ingest` and through the floor script
    (ingest_floor.py), both as whole processes, tests new (empty stores) then known (the same reports again);
    then `ingest_files` in process beside the floor. Every row beside its floor, measured the same minute."""
    rows = []
    for kind, source, cases in (("file", ctx.big_file, ctx.args.cases),
                                ("folder", ctx.folder, ctx.args.files * ctx.args.per_file)):
        rows += _cli_beside_floor(ctx, backend, kind, source, cases)
        rows += _service_beside_floor(ctx, backend, kind, source, cases)
    return rows


@contextmanager
def floor_store(ctx: Context, backend: str) -> Iterator[str]:
    """A fresh store for the floor script: a SQLite file, or an empty PostgreSQL schema's conninfo."""
    assert ctx.stores is not None
    url = ctx.stores.fresh(backend, "floor")
    try:
        yield str(make_url(url).database) if backend == "sqlite" else ctx.stores.conninfo(url)
    finally:
        ctx.stores.discard(url)


def floor_child(store: str, source: Path) -> Child:
    return run_child([sys.executable, str(FLOOR), str(source), store])


def _cli_beside_floor(ctx: Context, backend: str, kind: str, source: Path, cases: int) -> list[Row]:
    # Each round: the floor then the command, tests new (empty stores) then known (the same reports again).
    # Single runs of either drift by ±15% here from one minute to the next: the ratio is the median of
    # the rounds' ratios, each taken within the same minute.
    runs: dict[str, list[tuple[Child, Child]]] = {"new": [], "known": []}
    for _ in range(ctx.args.repeat):
        with floor_store(ctx, backend) as floor_db, fresh_store(ctx, backend, "floor_cli") as (url, _):
            for tests in ("new", "known"):
                floor = floor_child(floor_db, source)
                child = cli_ingest(ctx, url, [source])
                log(f"{backend} {kind} CLI, tests {tests}: {child.seconds:.2f}s, floor {floor.seconds:.2f}s: "
                    f"{floor.seconds / child.seconds:.2f}x")
                runs[tests].append((floor, child))
    rows = []
    what = "lxml iterparse + sqlite3 executemany" if backend == "sqlite" else "lxml + psycopg (executemany, COPY)"
    for tests, pairs in runs.items():
        ratios = sorted(floor.seconds / child.seconds for floor, child in pairs)
        ratio = statistics.median(ratios)
        floor = min((f for f, _ in pairs), key=lambda f: f.seconds)
        child = min((c for _, c in pairs), key=lambda c: c.seconds)
        spread = f", rounds {', '.join(f'{r:.2f}x' for r in ratios)}" if len(ratios) > 1 else ""
        of_floor = f"{ratio:.2f}x of the floor, median of {len(ratios)}{spread}"
        target = FLOOR_TARGETS[tests] if (backend, kind) == ("sqlite", "file") else None
        if target is not None:
            of_floor += f" (target ≥ {target}x: {'met' if ratio >= target else '**not met**'})"
        absolute = CLI_TARGETS.get((backend, kind, tests))
        rows.append(Row(f"floor: {what}, one process, {kind}, tests {tests} (best round)", backend, cases,
                        floor.seconds, floor.rss_mb, None, None, _floor_against(floor.seconds, cases, absolute)))
        rows.append(Row(f"`testledger ingest` {kind} (CLI process), tests {tests} (best round)", backend, cases,
                        child.seconds, max(c.rss_mb for _, c in pairs), absolute,
                        150 if (backend, kind) == ("sqlite", "file") else None, of_floor))
    return rows


def _floor_against(seconds: float, cases: int, target: float | None) -> str:
    """Whether the floor itself reaches a target rate on this machine today."""
    if target is None:
        return ""
    reaches = "reaches" if rate(cases, seconds) >= target else "**itself below**"
    return f"the floor {reaches} the target ({fmt_rate(target)})"


def _service_beside_floor(ctx: Context, backend: str, kind: str, source: Path, cases: int) -> list[Row]:
    """The service alone (no interpreter start, imports or summary: the start-up issue's), the same reports
    into a fresh store then again, each beside the floor (a whole process) measured right before it."""
    rows = []
    with floor_store(ctx, backend) as floor_db, fresh_store(ctx, backend, f"service_{kind}") as (_, store):
        for tests in ("new", "known"):
            floor = floor_child(floor_db, source)
            seconds = ingest_in_process(store, [source])
            log(f"{backend} {kind} service, tests {tests}: {seconds:.2f}s, floor {floor.seconds:.2f}s")
            target = SERVICE_TARGETS.get((backend, kind, tests))
            against = _floor_against(floor.seconds, cases, target)
            rows.append(Row(f"`ingest_files` {kind} in process (no CLI start), tests {tests}", backend, cases,
                            seconds, None, target, None, f"{floor.seconds / seconds:.2f}x of the floor "
                            f"({floor.seconds:.2f} s, same minute){'; ' + against if against else ''}"))
    return rows


def profile_ingest(ctx: Context, backend: str, limit: int) -> None:
    """cProfile of the in-process ingest of the big file and of 100-case runs, top functions to stderr."""
    for title, sources, per_file in (
        (ctx.big_file.name, [ctx.big_file], False),
        (f"{ctx.args.big_runs} one-file runs", folder_files(ctx)[: ctx.args.big_runs], True),
    ):
        with fresh_store(ctx, backend, "profile") as (_, store):
            profiler = cProfile.Profile()
            profiler.enable()
            ingest_in_process(store, sources, run_per_file=per_file)
            profiler.disable()
        for key in ("tottime", "cumulative"):
            print(f"\n--- profile: {backend} ingest of {title}, by {key} ---", file=sys.stderr)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats(key).print_stats(limit)


# -- peers: parsers ---------------------------------------------------------------------------
JUNITPARSER_CHILD = """
import sys, time
from junitparser import JUnitXml, TestSuite
start = time.perf_counter()
xml = JUnitXml.fromfile(sys.argv[1])
suites = [xml] if isinstance(xml, TestSuite) else xml
n = failing = 0
for suite in suites:
    for case in suite:
        n += 1
        failing += bool(case.result)
print(n, failing, time.perf_counter() - start)
"""
PRODUCT_PARSER_CHILD = """
import sys, time
from pathlib import Path
from testledger.ingest.model import ReportInfo
from testledger.ingest.parsers import get_parser
from testledger.ingest.sources import open_report
start = time.perf_counter()
n = 0
with open_report(Path(sys.argv[1]), max_bytes=1 << 40) as stream:
    for case in get_parser("junit").parse(stream, name="f", info=ReportInfo(format="junit")):
        n += 1
print(n, 0, time.perf_counter() - start)
"""


def parser_rows(ctx: Context) -> list[Row]:
    """The product's JUnit parser alone and junitparser, each in its own process."""
    rows = []
    for what, code, baseline in (
        ("testledger JUnit parser only (no store)", PRODUCT_PARSER_CHILD, "lxml iterparse+clear 297k/s, 19 MB"),
        ("junitparser fromfile + iterate cases, result", JUNITPARSER_CHILD, "112k/s, 260 MB"),
    ):
        child = run_child([sys.executable, "-c", code, str(ctx.big_file)])
        count, _, seconds = child.output.split()[-3:]
        assert int(count) == ctx.args.cases, child.output
        log(f"{what}: {float(seconds):.2f}s in process, {child.rss_mb:.0f} MB")
        rows.append(Row(what, "-", int(count), float(seconds), child.rss_mb, None, None, baseline))
    return rows


# -- raw insert ceilings ----------------------------------------------------------------------
def equivalent_rows(
    specs: Sequence[Spec], *, workspace_id: int, run_id: Any, created: Any, sqlite: bool
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The `cases` and `case_results` tuples the product writes for these specs."""
    cases, results = [], []
    no = 0 if sqlite else False
    for idx, s in enumerate(specs):
        identity = reported_identity(s.suite, s.classname, s.name)
        cid = case_id(workspace_id, identity)
        cases.append((cid, workspace_id, identity, "reported", None, s.name, s.suite, s.classname, created))
        category = categorise(s.status, message=s.message, error_type=s.error_type, stack_trace=s.trace)
        results.append((
            run_id, idx, None, cid, s.status, s.seconds * 1000, s.message, s.error_type, category, s.trace,
            s.stdout, None, None, 1, None, no, None, None, None, None, None,
        ))
    return cases, results


def insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def open_run(store: Store) -> tuple[Any, int]:
    """A run created through the product, for raw rows to belong to: (run id, workspace id)."""
    with store.write() as db:
        run = runs.create_run(
            db, workspace=WORKSPACE, actor="bench", environment="ci", allowed_environments=["ci"], pipeline_key=PIPELINE
        )
        return run.id, run.workspace_id


def raw_sqlite(store: Store, specs: Sequence[Spec]) -> float:
    """sqlite3 executemany of cases and results, product pragmas, one transaction, 5,000-row batches."""
    run_id, ws = open_run(store)
    cases, results = equivalent_rows(
        specs, workspace_id=ws, run_id=run_id.hex, created=sqlite_datetime(datetime.now(UTC)), sqlite=True
    )
    con = sqlite3.connect(str(make_url(store.url).database), isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-65536"):
        con.execute(f"PRAGMA {pragma}")
    case_sql = insert_sql("cases", CASE_COLUMNS).replace("INSERT", "INSERT OR IGNORE", 1)
    result_sql = insert_sql("case_results", RESULT_COLUMNS)
    start = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    for n in range(0, len(results), WRITE_BATCH):
        con.executemany(case_sql, cases[n:n + WRITE_BATCH])
        con.executemany(result_sql, results[n:n + WRITE_BATCH])
    con.execute("COMMIT")
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def raw_postgresql(store: Store, specs: Sequence[Spec], conninfo: str) -> float:
    """psycopg text COPY of cases and results into the real tables, one transaction."""
    run_id, ws = open_run(store)
    cases, results = equivalent_rows(specs, workspace_id=ws, run_id=run_id, created=datetime.now(UTC), sqlite=False)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        start = time.perf_counter()
        copy_rows(cur, "cases", CASE_COLUMNS, cases)
        copy_rows(cur, "case_results", RESULT_COLUMNS, results)
        conn.commit()
        return time.perf_counter() - start


def copy_rows(cur: psycopg.Cursor[Any], table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def raw_row(ctx: Context, backend: str) -> Row:
    specs = ctx.specs[: ctx.args.cases]
    with fresh_store(ctx, backend, "raw") as (url, store):
        assert ctx.stores is not None
        if backend == "sqlite":
            seconds = raw_sqlite(store, specs)
            what, baseline = "raw sqlite3 executemany, cases + results (ceiling)", "240-310k rows/s, no index"
        else:
            seconds = raw_postgresql(store, specs, ctx.stores.conninfo(url))
            what, baseline = "raw psycopg text COPY, cases + results (ceiling)", "text COPY 440k rows/s"
    log(f"{what}: {rate(len(specs), seconds):,.0f} rows/s")
    return Row(what, backend, len(specs), seconds, None, None, None, baseline)


# -- a store already holding many results ------------------------------------------------------
@dataclass
class BigLayout:
    """Runs of 100 results over 90 days, round-robin over 200 pipelines of 100 tests each."""

    results: int
    workspace_id: int
    pipelines: list[uuid.UUID]
    specs: list[Spec]
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def runs(self) -> int:
        return self.results // PER_SUITE

    def case_rows(self, created: Any) -> list[tuple[Any, ...]]:
        rows = []
        for s in self.specs[: len(self.pipelines) * PER_SUITE]:
            identity = reported_identity(s.suite, s.classname, s.name)
            rows.append((case_id(self.workspace_id, identity), self.workspace_id, identity, "reported", None,
                         s.name, s.suite, s.classname, created))
        return rows


def uuid7_at(ms: int, rng: random.Random) -> uuid.UUID:
    """A version-7 UUID for a given Unix millisecond, so old runs sort before new ones as in real stores."""
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62))


def big_chunks(layout: BigLayout, *, sqlite: bool, chunk_runs: int = 1000) -> Iterator[tuple[list[Any], list[Any]]]:
    """(run rows, result rows) per `chunk_runs` runs, oldest first, in the real tables' column order."""
    rng = random.Random(7)
    pattern = rng.choices(("passed", "failed", "error", "skipped"), weights=(94.5, 3, 0.5, 2), k=1000)
    pattern += pattern[:PER_SUITE]
    durations = [round(rng.expovariate(40) * 1000, 1) for _ in pattern]
    trace = next(s.trace for s in layout.specs if s.trace)
    detail = {"passed": (None, None, None, None), "skipped": ("needs a GPU runner", None, None, None),
              "failed": ("expected status 200 but got 503", "AssertionError", "assertion", trace),
              "error": ("'customer_id'", "KeyError", "error", trace)}
    ids = [row[0] for row in layout.case_rows(None)]
    cases = [ids[p * PER_SUITE:(p + 1) * PER_SUITE] for p in range(len(layout.pipelines))]
    start_ms = int((layout.now - timedelta(days=BIG_DAYS)).timestamp() * 1000)
    step_ms = BIG_DAYS * 86_400_000 // max(layout.runs, 1)
    no: Any = 0 if sqlite else False
    for first in range(0, layout.runs, chunk_runs):
        run_rows, result_rows = [], []
        for r in range(first, min(first + chunk_runs, layout.runs)):
            ms = start_ms + r * step_ms
            run_uuid, off, p = uuid7_at(ms, rng), (r * 37) % 1000, r % len(layout.pipelines)
            rid: Any = run_uuid.hex if sqlite else run_uuid
            statuses, cids = pattern[off:off + PER_SUITE], cases[p]
            result_rows += [(rid, i, None, cids[i], st, durations[off + i], *detail[st], None, None, None, 1, None, no,
                             None, None, None, None, None) for i, st in enumerate(statuses)]
            run_rows.append(_run_row(layout, r, rid, ms, statuses, sqlite=sqlite))
        yield run_rows, result_rows


def _run_row(layout: BigLayout, r: int, rid: Any, ms: int, statuses: list[str], *, sqlite: bool) -> tuple[Any, ...]:
    created = datetime.fromtimestamp(ms / 1000, UTC)
    done = created + timedelta(seconds=90)
    stamp: Callable[[datetime], Any] = sqlite_datetime if sqlite else (lambda d: d)
    pipeline = layout.pipelines[r % len(layout.pipelines)]
    failed, errors, skipped = statuses.count("failed"), statuses.count("error"), statuses.count("skipped")
    return (
        rid, f"BIG-{r}", layout.workspace_id, pipeline.hex if sqlite else pipeline, 0, "completed",
        "failed" if failed or errors else "passed", stamp(created), stamp(created), stamp(done), 90_000, "ci",
        "ci-bot", "api", f"{r * 2654435761 % 2**40:010x}", "main", "ingest", 0 if sqlite else False,
        len(statuses), len(statuses) - failed - errors - skipped, failed, errors, skipped, 0, 0,
    )


def big_layout(store: Store, ctx: Context) -> BigLayout:
    """Workspace and 200 pipelines through the product; the rest is raw rows."""
    pipelines = min(BIG_PIPELINES, max(1, ctx.args.big_store // PER_SUITE), len(ctx.specs) // PER_SUITE)
    with store.write() as db:
        ws = ensure_workspace(db, key=WORKSPACE)
        ids = [ensure_pipeline(db, workspace=ws, key=f"big-{p:03d}").id for p in range(pipelines)]
        return BigLayout(ctx.args.big_store, ws.id, ids, ctx.specs)


def fill_sqlite(url: str, layout: BigLayout) -> None:
    """Raw sqlite3 executemany into the real tables; foreign keys off and synchronous=OFF while filling."""
    con = sqlite3.connect(str(make_url(url).database), isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")
    con.execute("BEGIN")
    created = sqlite_datetime(layout.now - timedelta(days=BIG_DAYS))
    con.executemany(insert_sql("cases", CASE_COLUMNS), layout.case_rows(created))
    con.execute("COMMIT")
    run_sql, result_sql = insert_sql("test_runs", RUN_COLUMNS), insert_sql("case_results", RESULT_COLUMNS)
    for run_rows, result_rows in big_chunks(layout, sqlite=True):
        con.execute("BEGIN")
        con.executemany(run_sql, run_rows)
        con.executemany(result_sql, result_rows)
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def floor_big_rows(layout: BigLayout) -> tuple[list[tuple[Any, ...]], Iterator[list[tuple[Any, ...]]]]:
    """The floor script's rows for as many results as the big store holds, on its tests (keyed as the floor
    keys them, so the runs measured after find their tests known, as the product's do): the cases, and the
    results a thousand runs at a time."""
    pipelines = len(layout.pipelines)
    identities = [f"{s.classname}::{s.name}" for s in layout.specs[: pipelines * PER_SUITE]]
    ids = [ingest_floor.case_key(identity) for identity in identities]

    def results() -> Iterator[list[tuple[Any, ...]]]:
        for first in range(0, layout.runs, 1000):
            yield [(r, i, ids[(r % pipelines) * PER_SUITE + i], "passed", 0.01, None, None, None)
                   for r in range(first, min(first + 1000, layout.runs)) for i in range(PER_SUITE)]

    return [(i, identity, "name", "class") for i, identity in zip(ids, identities, strict=True)], results()


def fill_floor_sqlite(path: str, layout: BigLayout) -> None:
    """The floor script's tables (`ingest_floor.py`) filled like the big store: raw executemany."""
    con = ingest_floor.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    cases, results = floor_big_rows(layout)
    con.execute("BEGIN")
    con.executemany("INSERT OR IGNORE INTO cases VALUES (?, ?, ?, ?)", cases)
    con.execute("COMMIT")
    for rows in results:
        con.execute("BEGIN")
        con.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def fill_floor_postgresql(conninfo: str, layout: BigLayout) -> None:
    """The floor script's tables on PostgreSQL filled like the big store: text COPY, then VACUUM ANALYZE."""
    conn = ingest_floor.connect_pg(conninfo)
    try:
        cases, results = floor_big_rows(layout)
        with conn.cursor() as cur:
            copy_rows(cur, "cases", ("id", "identity", "name", "classname"), cases)
            conn.commit()
            for rows in results:
                copy_rows(cur, "results", ("run", "idx", "case_id", "status", "duration", "message", "trace",
                                           "stdout"), rows)
                conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    finally:
        conn.close()


def fill_postgresql(conninfo: str, layout: BigLayout) -> None:
    """Text COPY into the real tables, foreign-key triggers off (session_replication_role), then VACUUM ANALYZE."""
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        copy_rows(cur, "cases", CASE_COLUMNS, layout.case_rows(layout.now - timedelta(days=BIG_DAYS)))
        conn.commit()
        for run_rows, result_rows in big_chunks(layout, sqlite=False, chunk_runs=2000):
            copy_rows(cur, "test_runs", RUN_COLUMNS, run_rows)
            copy_rows(cur, "case_results", RESULT_COLUMNS, result_rows)
            conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")  # as autovacuum would soon after such a load; it would otherwise run mid-test


def big_store_rows(ctx: Context, backend: str) -> list[Row]:
    """(d) 100-case runs, one transaction each, into a fresh store and into one holding --big-store results."""
    assert ctx.stores is not None
    args, files = ctx.args, folder_files(ctx)[: ctx.args.big_runs]
    cases = sum(1 for _ in files) * args.per_file
    with fresh_store(ctx, backend, "small") as (_, store):
        fresh_s = ingest_in_process(store, files, run_per_file=True)
    rows = [Row(f"{len(files)} runs of one 100-case file each, fresh store", backend, cases, fresh_s)]
    with fresh_store(ctx, backend, "big") as (url, store):
        layout = big_layout(store, ctx)
        start = time.perf_counter()
        fill_sqlite(url, layout) if backend == "sqlite" else fill_postgresql(ctx.stores.conninfo(url), layout)
        build_s = time.perf_counter() - start
        size = ctx.stores.size(url)
        ctx.sizes[f"big store ({backend})"] = (f"{layout.runs * PER_SUITE:,} results, {layout.runs:,} runs, "
                                               f"{len(layout.pipelines) * PER_SUITE:,} tests, {size:.1f} GB on disk")
        log(f"{backend} big store: {layout.runs * PER_SUITE:,} rows in {build_s:.0f}s, {size:.1f} GB")
        rows.append(Row("build the big store (raw rows, see --help)", backend, layout.runs * PER_SUITE, build_s))
        big_s = ingest_in_process(store, files, run_per_file=True)
        label = f"{layout.runs * PER_SUITE / 1e6:g}M"
        # The floor's tables holding as many results (filled the same raw way), the same runs into them.
        start = time.perf_counter()
        floor_url = ctx.stores.fresh(backend, "floor_big")
        try:
            if backend == "sqlite":
                floor_path = str(make_url(floor_url).database)
                fill_floor_sqlite(floor_path, layout)
                floor_s = timed_runs(ingest_floor.connect(floor_path), ingest_floor.ingest, files)
            else:
                conninfo = ctx.stores.conninfo(floor_url)
                fill_floor_postgresql(conninfo, layout)
                floor_s = timed_runs(ingest_floor.connect_pg(conninfo), ingest_floor.ingest_pg, files)
        finally:
            ctx.stores.discard(floor_url)
        log(f"{backend} floor big store: {layout.runs * PER_SUITE:,} rows and its runs in "
            f"{time.perf_counter() - start:.0f}s")
        rows.append(Row(f"floor: the same {len(files)} runs into its tables holding {label} results", backend,
                        cases, floor_s, None, None, None, per_run_ms(floor_s, len(files))))
        beside = f"{per_run_ms(big_s, len(files))}, {floor_s / big_s:.2f}x of the floor"
        rows.append(Row(f"{len(files)} runs of one 100-case file each, store holding {label} results", backend, cases,
                        big_s, None, 40_000, None, beside))
        child = cli_ingest(ctx, url, files[-1:])
        rows.append(Row(f"`testledger ingest` one 100-case file, {label} store (CLI process)", backend,
                        args.per_file, child.seconds, child.rss_mb))
    log(f"{backend} ingest into big store: {rate(cases, big_s):,.0f} cases/s (fresh: {rate(cases, fresh_s):,.0f})")
    return rows


# -- allure -----------------------------------------------------------------------------------
def find_allure(ctx: Context) -> tuple[str | None, str]:
    """The allure command, installing allure-commandline with npm into the cache when needed."""
    if shutil.which("java") is None:
        return None, "no java on PATH"
    for candidate in (ctx.args.allure, shutil.which("allure"), str(ALLURE_CACHE / "node_modules" / ".bin" / "allure")):
        if candidate and Path(candidate).exists():
            return candidate, ""
    if shutil.which("npm") is None:
        return None, "neither allure nor npm on PATH"
    ALLURE_CACHE.mkdir(parents=True, exist_ok=True)
    log(f"npm install allure-commandline into {ALLURE_CACHE}")
    try:
        run_child(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(ALLURE_CACHE), "allure-commandline"],
                  timeout=300)
    except RuntimeError as exc:
        return None, f"npm install allure-commandline failed (offline?): {str(exc).splitlines()[-1]}"
    found = ALLURE_CACHE / "node_modules" / ".bin" / "allure"
    return (str(found), "") if found.exists() else (None, "allure not found after npm install")


def write_allure_results(folder: Path, specs: Sequence[Spec]) -> None:
    """One `<uuid>-result.json` per case (allure-pytest's shape); stdout as a text attachment."""
    folder.mkdir()
    status = {"passed": "passed", "failed": "failed", "error": "broken", "skipped": "skipped"}
    start = int(time.time() * 1000)
    for n, s in enumerate(specs):
        uid = str(uuid.UUID(int=n + 1))
        data: dict[str, Any] = {
            "uuid": uid, "historyId": f"{n:032x}", "testCaseId": f"{n:032x}", "name": s.name,
            "fullName": f"{s.classname}#{s.name}", "status": status[s.status], "stage": "finished",
            "start": start + n, "stop": start + n + int(s.seconds * 1000),
            "labels": [{"name": "suite", "value": s.suite}, {"name": "testClass", "value": s.classname},
                       {"name": "framework", "value": "pytest"}, {"name": "language", "value": "python"}],
        }
        if s.message or s.trace:
            data["statusDetails"] = {"message": s.message or "", "trace": s.trace or ""}
        if s.stdout:
            (folder / f"{uid}-attachment.txt").write_text(s.stdout)
            data["attachments"] = [{"name": "stdout", "source": f"{uid}-attachment.txt", "type": "text/plain"}]
        (folder / f"{uid}-result.json").write_text(json.dumps(data))


def allure_row(ctx: Context) -> tuple[Row | None, str]:
    allure, reason = find_allure(ctx)
    if allure is None:
        return None, reason
    results = ctx.work / "allure-results"
    start = time.perf_counter()
    write_allure_results(results, ctx.specs[: ctx.args.cases])
    log(f"allure results written in {time.perf_counter() - start:.1f}s; running allure generate")
    try:
        child = run_child([allure, "generate", str(results), "-o", str(ctx.work / "allure-report"), "--clean"],
                          timeout=900)
    except RuntimeError as exc:
        return None, f"allure generate failed: {str(exc)[-300:]}"
    shutil.rmtree(results, ignore_errors=True)
    log(f"allure generate: {child.seconds:.1f}s, {child.rss_mb:.0f} MB")
    row = Row("`allure generate` (from allure-results JSON)", "-", ctx.args.cases, child.seconds, child.rss_mb,
              None, None, "32.6 s, 2.8 GB")
    return row, allure_version(allure)


def allure_version(allure: str) -> str:
    try:
        return "Allure " + run_child([allure, "--version"], timeout=120).output.strip().splitlines()[-1]
    except RuntimeError:
        return "Allure ?"


# -- report -----------------------------------------------------------------------------------
def versions(ctx: Context, backends: Sequence[str]) -> dict[str, str]:
    import junitparser
    import sqlalchemy

    extra = {
        "lxml": ".".join(map(str, etree.LXML_VERSION)) + f" (libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))})",
        "SQLAlchemy": sqlalchemy.__version__, "psycopg": psycopg.__version__, "junitparser": junitparser.version,
    }
    if "postgresql" in backends and ctx.stores is not None:
        with psycopg.connect(ctx.stores.conninfo()) as conn:
            extra["PostgreSQL"] = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    java = subprocess.run(["java", "-version"], capture_output=True, text=True) if shutil.which("java") else None
    extra["Java"] = java.stderr.splitlines()[0] if java and java.stderr else "-"
    return machine_info(**extra)


def render(info: dict[str, str], sizes: dict[str, str], rows: Sequence[Row], notes: Sequence[str]) -> str:
    facts = markdown_table(["machine / data", ""], [*info.items(), *sizes.items()])
    table = markdown_table(
        ["measurement", "backend", "cases", "time", "cases/s", "peak RSS", "target", "meets", "PERFORMANCE.md"],
        [
            (r.what, r.backend, f"{r.cases:,}", f"{r.seconds:.2f} s", fmt_rate(r.per_second),
             f"{r.rss_mb:.0f} MB" if r.rss_mb is not None else "-", r.target(), r.verdict(), r.baseline)
            for r in rows
        ],
    )
    return "\n\n".join([facts, table, *(f"- {n}" for n in notes)]) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_ingest.py", description=__doc__, epilog=(
        "The big store is built with raw sqlite3 executemany (foreign keys off, synchronous=OFF) or text COPY "
        "(session_replication_role=replica, then VACUUM ANALYZE) into the real migrated schema: a workspace and 200 "
        "pipelines made by the product, 20k reported tests, --big-store/100 completed runs of 100 results over "
        "90 days with time-ordered (v7) run ids, 94.5%% passed, 3%% failed and 0.5%% error with a ~2 KB trace."))
    parser.add_argument("--cases", type=int, default=100_000, help="cases in the one big file")
    parser.add_argument("--files", type=int, default=1000, help="files in the folder")
    parser.add_argument("--per-file", type=int, default=PER_SUITE, help="cases per file in the folder")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--big-store", type=int, default=10_000_000, help="results in the big store (0: skip)")
    parser.add_argument("--big-runs", type=int, default=200, help="100-case runs ingested into the big store")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of each command beside its floor (the median of the rounds' ratios is reported)")
    parser.add_argument("--skip-allure", action="store_true")
    parser.add_argument("--issue10", action="store_true",
                        help="only issue 10's rows: the floor, the service beside it, 100-case runs, big store")
    parser.add_argument("--allure", help="allure command (default: PATH, then the cache, else npm install)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile the file ingest, top N")
    parser.add_argument("--pg-url", default=PG_BASE)
    parser.add_argument("--workdir", help="where the temp dir goes (default: system temp)")
    parser.add_argument("--seed", type=int, default=20250601)
    return parser.parse_args(argv)


def run_all(ctx: Context, backends: Sequence[str]) -> tuple[list[Row], list[str]]:
    args, notes = ctx.args, []
    log("generating reports")
    generate(ctx)
    rows = [] if args.issue10 else parser_rows(ctx)
    for backend in backends:
        rows += floor_rows(ctx, backend)
    for backend in () if args.issue10 else backends:
        rows.append(raw_row(ctx, backend))
        if args.profile:
            profile_ingest(ctx, backend, args.profile)
    for backend in backends if args.big_runs else ():
        rows += small_run_rows(ctx, backend)
    for backend in backends if args.big_store else ():
        rows += big_store_rows(ctx, backend)
    if args.skip_allure or args.issue10:
        notes.append("allure skipped (--skip-allure)")
    else:
        allure, detail = allure_row(ctx)
        rows += [allure] if allure else []
        notes.append(f"allure: {detail}" if allure else f"allure skipped: {detail}")
    return rows, notes


def main() -> None:
    args = parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    byte_compile(Path(testledger.__file__).parent)  # the CLI rows start processes as an installed copy does
    # The in-process rows parse large reports in a second process, as the CLI does; the CLI starts its fork
    # server at once, beside its own start-up, so this process does too: otherwise the first in-process row
    # would pay the server's boot (~0.25 s), which earlier runs showed as the rollup hook's cost.
    parse_process.start_server()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=args.workdir) as tmp:
        ctx = Context(args, Path(tmp))
        ctx.stores = Stores(ctx.work, args.pg_url)
        try:
            info = versions(ctx, backends)
            rows, notes = run_all(ctx, backends)
        finally:
            ctx.stores.close()
    notes.append("cases/s of CLI rows is wall time of the whole process (interpreter start, imports, run summary).")
    print(render(info, ctx.sizes, rows, notes))


if __name__ == "__main__":
    # Run again with this file imported as a module under `-c`: a child of multiprocessing's fork server
    # runs the main script's file again (its imports: SQLAlchemy, psycopg, the services, ~0.3 s a child;
    # Python 3.11 cannot preload `__main__` into the server), which the in-process rows would pay and
    # `testledger ingest`, whose script imports little, does not.
    os.execv(sys.executable, [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                              "import bench_ingest; bench_ingest.main()", *sys.argv[1:]])
