"""Executor overhead: a pipeline of 1,000 `true` commands at parallelism 2, beside `xargs -P 2`.

Both sides run every command the same way, `/bin/sh -c true` (testledger runs each command case
with `/bin/sh -c`; xargs is given `/bin/sh -c {}`). testledger is timed end to end as a user runs it
(`testledger run KEY`: interpreter start, store, 1,000 results written, final tree) and, separately,
as the run's own duration (started_at -> completed_at, the executor alone). The pipeline is applied
once before timing, so the 1,000-case `pipelines apply` is not counted. A one-case pipeline is
timed the same way to separate the fixed cost of starting the CLI (imports, store, final output)
from the per-case overhead: overhead per case = (end to end - fixed - xargs) / cases. The package is
byte-compiled first, as `pip install` of a wheel does (see `common.byte_compile`).
`--before SRC` also runs the same two pipelines from another source tree (its src/ folder, e.g. a
`git worktree` of an earlier commit), alternated with these, for a before/after in one run.

Each round also times a process that only imports the libraries `testledger run KEY` is built on (SQLAlchemy
Core with its SQLite dialect, pydantic's models, Typer) and leaves as the command does (the cyclic collector
paused while importing, no interpreter teardown: see `cli/startup.py` and `cli/main.console`): the dependency
floor, what any command built on them pays before its first line. "floor + run only" against xargs is the best the whole
command can reach with these libraries and this executor; "own fixed" (the 1-case run less the floor)
is what testledger's own start adds: its modules, the store, the run's bookkeeping, the final tree.

    python benchmarks/bench_execute.py [--cases 1000] [--parallel 2] [--repeat 5] [--before /tmp/base/src]

Prints a markdown row for docs/benchmarks.md. Targets (issue 10): run only <= 1.3x of xargs, end to end <= 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from common import byte_compile

import testledger


def pipeline(cases: int, parallel: int) -> str:
    lines = [f"key: bench\nname: {cases} true commands\nparallelism: {parallel}\ncases:"]
    lines += [f"  - {{key: c{i}, command: \"true\"}}" for i in range(cases)]
    return "\n".join(lines) + "\n"


def time_xargs(cases: int, parallel: int) -> float:
    commands = "true\n" * cases
    started = time.perf_counter()
    subprocess.run(["xargs", "-P", str(parallel), "-I{}", "/bin/sh", "-c", "{}"], input=commands.encode(),
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


#: The libraries `testledger run KEY` imports, without anything of testledger's, imported and left as it does.
#: (Until 2026-12-04 the floor imported the ORM too, with the collector on, and left through the interpreter's
#: teardown: 50-110 ms more than a command pays, so "own fixed" read that much too low.)
DEPENDENCIES = ("import gc, os; gc.disable(); import sqlalchemy, sqlalchemy.dialects.sqlite, typer; "
                "from pydantic import BaseModel; os._exit(0)")


def time_dependencies() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", DEPENDENCIES], check=True)
    return time.perf_counter() - started


def time_testledger(env: dict[str, str], *, cases: int, key: str = "bench") -> tuple[float, float]:
    """(end-to-end seconds, the run's own duration in seconds)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "testledger", "run", key, "--json"], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"testledger run failed ({done.returncode}): {done.stderr[-2000:]}")
    run = json.loads(done.stdout)
    assert run["totals"]["passed"] == cases, run["totals"]
    return wall, run["duration_ms"] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", help="Also run from this source tree (its src/ folder), alternated.")
    args = parser.parse_args()
    # Every row starts processes as an installed copy does.
    byte_compile(Path(testledger.__file__).parent, *([Path(args.before) / "testledger"] if args.before else []))
    with tempfile.TemporaryDirectory(prefix="tl-bench-") as home:
        env = {**os.environ, "TESTLEDGER_HOME": home, "TESTLEDGER_ACTOR": "bench"}
        env.pop("TESTLEDGER_DATABASE_URL", None)
        sides = {"": env}
        if args.before:
            sides[" (before)"] = {**env, "PYTHONPATH": args.before}
        path = Path(home) / "bench.yaml"
        path.write_text(pipeline(args.cases, args.parallel))
        one = Path(home) / "one.yaml"
        one.write_text(pipeline(1, 1).replace("key: bench", "key: one"))
        for file in (path, one):
            subprocess.run([sys.executable, "-m", "testledger", "pipelines", "apply", str(file)], env=env,
                           check=True, stdout=subprocess.DEVNULL)
        time_xargs(args.cases, args.parallel)  # warm the page cache on both sides
        time_testledger(env, cases=args.cases)
        xargs: list[float] = []
        wall: dict[str, list[float]] = {side: [] for side in sides}
        executor: dict[str, list[float]] = {side: [] for side in sides}
        fixed: dict[str, list[float]] = {side: [] for side in sides}
        floor: list[float] = []
        for _ in range(args.repeat):
            xargs.append(time_xargs(args.cases, args.parallel))
            floor.append(time_dependencies())
            for side, side_env in sides.items():
                e2e, run = time_testledger(side_env, cases=args.cases)
                wall[side].append(e2e)
                executor[side].append(run)
                fixed[side].append(time_testledger(side_env, cases=1, key="one")[0])
    x, d = statistics.median(xargs), statistics.median(floor)
    print(f"xargs      {' '.join(f'{v:.3f}' for v in xargs)}  median {x:.3f}s", file=sys.stderr)
    print(f"dependency floor {' '.join(f'{v:.3f}' for v in floor)}  median {d:.3f}s ({DEPENDENCIES})",
          file=sys.stderr)
    print("| date | machine | cases | -P | xargs | testledger run (end to end) | fixed (1-case run) | run duration "
          "| ratio end to end | ratio without fixed | ratio run only | overhead per case | dependency floor "
          "| floor + run only | own fixed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    machine = f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}, SQLite"
    for side in sides:
        w, r, f = (statistics.median(v[side]) for v in (wall, executor, fixed))
        spread = (max(wall[side]) - min(wall[side])) / w * 100
        overhead_ms = (w - f - x) / args.cases * 1000
        print(f"testledger{side} {' '.join(f'{v:.3f}' for v in wall[side])}  median {w:.3f}s (spread {spread:.0f}%)",
              file=sys.stderr)
        print(f"run only{side}   {' '.join(f'{v:.3f}' for v in executor[side])}  median {r:.3f}s", file=sys.stderr)
        print(f"1-case run{side} {' '.join(f'{v:.3f}' for v in fixed[side])}  median {f:.3f}s (fixed cost)",
              file=sys.stderr)
        print(f"| {date.today()}{side} | {machine} | {args.cases} | {args.parallel} | {x:.2f}s | {w:.2f}s | {f:.2f}s "
              f"| {r:.2f}s | {w / x:.2f}x | {(w - f) / x:.2f}x | {r / x:.2f}x | {overhead_ms:.2f} ms | {d:.2f}s "
              f"| {(d + r) / x:.2f}x | {(f - d) * 1000:.0f} ms |")

if __name__ == "__main__":
    main()
