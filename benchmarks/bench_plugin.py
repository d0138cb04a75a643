"""The pytest plugin's cost: 1,000 trivial tests under plain pytest beside the same with `--testledger`.

Both are timed end to end as a user runs them (`python -m pytest -q -p no:cacheprovider`: interpreter
start, collection, the tests, and with the plugin the store, the run and every result written), in
alternation, `--repeat` times each, on a fresh SQLite store per run (or a PostgreSQL schema with
`--pg-url`). The ratio of the medians is the figure to compare with the target (<= 1.3x). CPU time
(user + system of the pytest process, from `getrusage`) is reported beside wall time: on a machine
shared with other work it is the steadier of the two.

    python benchmarks/bench_plugin.py [--tests 1000] [--repeat 5] [--pg-url postgresql+psycopg://...]

Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_info, markdown_table


def write_suite(root: Path, tests: int) -> None:
    per_file = 100
    for number in range(0, tests, per_file):
        names = range(number, min(tests, number + per_file))
        body = "\n".join(f"def test_{i}():\n    assert {i} == {i}\n" for i in names)
        (root / f"test_bench_{number // per_file}.py").write_text(body)


def time_pytest(root: Path, env: dict[str, str], *extra: str) -> tuple[float, float]:
    """Wall and CPU seconds of one pytest session."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra], cwd=root,
                          env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pg_schema(base: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, f"{base}?options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg-url", default=None, help="Measure against PostgreSQL instead of SQLite.")
    args = parser.parse_args()
    plain: list[tuple[float, float]] = []
    recorded: list[tuple[float, float]] = []
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "suite"
        root.mkdir()
        write_suite(root, args.tests)
        env = {**os.environ, "TESTLEDGER_HOME": str(Path(tmp) / "home"), "TESTLEDGER_ACTOR": "bench"}
        env.pop("CI", None)
        if args.pg_url:
            from testledger.db.engine import Store

            schema, url = pg_schema(args.pg_url)
            Store(url, auto_migrate=True).dispose()
            env["TESTLEDGER_DATABASE_URL"] = url
        else:
            env.pop("TESTLEDGER_DATABASE_URL", None)
        try:
            time_pytest(root, env, "--testledger")  # warm up: creates the store, fills the page cache
            for round_ in range(args.repeat):
                plain.append(time_pytest(root, env))
                recorded.append(time_pytest(root, env, "--testledger"))
                print(f"round {round_ + 1}: plain {plain[-1][0]:.2f}s (cpu {plain[-1][1]:.2f}s), --testledger "
                      f"{recorded[-1][0]:.2f}s (cpu {recorded[-1][1]:.2f}s)", file=sys.stderr)
        finally:
            if schema and args.pg_url:
                drop_schema(args.pg_url, schema)
    base, with_plugin = statistics.median(w for w, _ in plain), statistics.median(w for w, _ in recorded)
    base_cpu, with_cpu = statistics.median(c for _, c in plain), statistics.median(c for _, c in recorded)
    info = machine_info(store="PostgreSQL" if args.pg_url else "SQLite", tests=str(args.tests),
                        repeat=str(args.repeat), load=" ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(markdown_table(["machine / data", ""], [[k, v] for k, v in info.items()]))
    print()
    print(markdown_table(["metric", "with --testledger", "baseline (plain pytest, same run)", "ratio"], [
        [f"{args.tests} trivial tests, wall (median)", f"{with_plugin:.2f} s", f"{base:.2f} s",
         f"{with_plugin / base:.2f}x"],
        [f"{args.tests} trivial tests, CPU (median)", f"{with_cpu:.2f} s", f"{base_cpu:.2f} s",
         f"{with_cpu / base_cpu:.2f}x"],
        ["added CPU per session (fixed: imports, store, run)", f"{with_cpu - base_cpu:.2f} s", "-",
         "target <= 1.3x"],
    ]))


if __name__ == "__main__":
    main()
