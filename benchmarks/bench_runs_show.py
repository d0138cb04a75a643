"""`testledger runs show` of a 100,000-case run: wall time and peak memory, beside the old way and a baseline.

Each variant is a fresh process, timed end to end (interpreter start, store, query, output to
/dev/null), with its CPU time (user + system) and peak RSS from `wait4`. On a shared, loaded
machine the wall time mostly measures waiting for a core; the CPU time is the steadier figure:

- baseline: the same process shape that reads only the run row (`get_execution(with_cases=False)`);
- old way: what `runs show` did before: every case loaded as a schema, then the tree filtered;
- `runs show`: the command as a user runs it (failures listed in SQL, bounded, a cursor for the rest);
- `runs show --json` and one `--cursor` page of 200 cases.

The run is ingested once per backend from a synthetic JUnit file (5% failures with 1-3 KB
tracebacks, 10% with system-out, as in PERFORMANCE.md).

    python benchmarks/bench_runs_show.py [--cases 100000] [--repeat 3] [--backend sqlite|postgresql|both]

Prints a markdown table for docs/benchmarks.md. Target: under 1 s and 100 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from common import machine_info, markdown_table
from sqlalchemy import create_engine, text

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

BASELINE = """
from testledger.cli.main import app  # the CLI's imports, as `runs show` pays them
from testledger.db.engine import open_store
from testledger.services.runs import get_execution
with open_store().read() as db:
    get_execution(db, workspace="WKS", key=KEY, with_cases=False)
"""

OLD_WAY = """
from testledger.cli.render import console, execution_tree
from testledger.db.engine import open_store
from testledger.services.runs import get_execution
with open_store().read() as db:
    execution = get_execution(db, workspace="WKS", key=KEY)  # every case, as `runs show` did
console().print(execution_tree(execution))
"""


def junit(path: Path, cases: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    with path.open("w") as out:
        out.write('<?xml version="1.0"?>\n<testsuites><testsuite name="big">\n')
        for i in range(cases):
            roll = rnd.random()
            out.write(f'<testcase classname="pkg.mod{i % 500}.Test" name="test_{i}" time="{rnd.random():.3f}">')
            if roll < 0.05:
                trace = "".join(f"  File \"pkg/mod.py\", line {n}, in f\n" for n in range(rnd.randint(25, 75)))
                out.write(f'<failure message="expected {i}" type="AssertionError">{trace}</failure>')
            elif roll < 0.15:
                out.write(f"<system-out>log line for {i}\n</system-out>")
            out.write("</testcase>\n")
        out.write("</testsuite></testsuites>\n")


#: Forks and execs the measured command and reports its rusage: started from this small
#: interpreter, the command's peak RSS is its own. (A child of the benchmark process itself would
#: carry that process's high-water mark, which holds the ingested run, through fork or vfork + exec.)
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_pid, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
print(os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
"""


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds (user + system), peak RSS in MB) of one fresh process."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], env=env, capture_output=True, text=True)
    code, wall, cpu, rss = done.stdout.split()
    if code != "0":
        raise SystemExit(f"{argv} failed with {code}: {done.stderr[-2000:]}")
    return float(wall), float(cpu), float(rss)


def prepare(url: str, home: Path, report: Path) -> str:
    from testledger.db.engine import Store
    from testledger.services.ingest import ingest_files

    store = Store(url, auto_migrate=True)
    with store.write() as db:
        outcome = ingest_files(db, workspace="WKS", paths=[report], actor="bench", max_bytes=1 << 30,
                               pipeline_key="big", environment="ci", allowed_environments=["ci"])
    store.dispose()
    return outcome.run_key


def bench(url: str, home: Path, report: Path, repeat: int) -> dict[str, tuple[float, float, float]]:
    key = prepare(url, home, report)
    env = {**os.environ, "TESTLEDGER_HOME": str(home), "TESTLEDGER_DATABASE_URL": url, "COLUMNS": "120"}
    cli = [sys.executable, "-m", "testledger", "runs", "show", key]
    variants = {
        "baseline: run row only": [sys.executable, "-c", f"KEY = {key!r}\n{BASELINE}"],
        "old way: every case loaded": [sys.executable, "-c", f"KEY = {key!r}\n{OLD_WAY}"],
        "`runs show`": cli,
        "`runs show --json`": [*cli, "--json"],
        "`runs show --cursor 50000` (200 cases)": [*cli, "--cursor", "50000"],
    }
    results: dict[str, tuple[float, float, float]] = {}
    for name, argv in variants.items():
        samples = [measure(argv, env) for _ in range(repeat)]
        results[name] = (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples),
                         max(s[2] for s in samples))
        wall, cpu, rss = results[name]
        print(f"{url.split(':')[0]} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {rss:.0f} MB", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-show-"))
    report = tmp / "big.xml"
    junit(report, args.cases)
    table: dict[str, dict[str, tuple[float, float, float]]] = {}
    if args.backend in ("sqlite", "both"):
        table["SQLite"] = bench(f"sqlite:///{tmp / 'sqlite' / 'testledger.db'}", tmp / "sqlite", report, args.repeat)
    if args.backend in ("postgresql", "both"):
        schema = f"bench_show_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
            table["PostgreSQL"] = bench(url, tmp / "pg", report, args.repeat)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(markdown_table(["machine / data", ""], [*machine_info().items(), ("cases in the run", f"{args.cases:,}")]))
    print()
    backends = list(table)
    headers = ["variant", *(f"{b} wall / CPU / peak RSS" for b in backends)]
    rows = [[name, *("{:.2f} s / {:.2f} s / {:.0f} MB".format(*table[b][name]) for b in backends)]
            for name in next(iter(table.values()))]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
