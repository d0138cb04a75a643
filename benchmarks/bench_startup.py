"""Start-up time of everyday commands beside `python -c "import sqlalchemy"`, measured in one run.

Each command runs as its own process (as a user types it) against a fresh SQLite store under a
temporary TESTLEDGER_HOME; the median of `--repeat` runs is compared with the median of the same
number of bare `import sqlalchemy` processes, alternated so machine load hits both alike. Besides wall
time it reports each process's CPU time (user + system), which a loaded machine disturbs far less.
Both source trees are byte-compiled first, as `pip install` of a wheel does: with
PYTHONDONTWRITEBYTECODE set (this machine sets it) an editable install would otherwise compile every
testledger module from source on each start, ~25 ms that no installed user pays.
`--before SRC` adds the same commands run from another source tree (e.g. `git archive` of main),
alternated with these, for a before/after in one run.

    python benchmarks/bench_startup.py --repeat 15 [--before /tmp/base/src]
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
from pathlib import Path

from common import byte_compile, machine_info, markdown_table

CASES = 100


def _report(path: Path) -> None:
    cases = "".join(f'<testcase classname="bench.Start" name="test_{i}" time="0.001"/>' for i in range(CASES))
    path.write_text(f'<testsuite name="bench" tests="{CASES}">{cases}</testsuite>')


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--before", help="Also run the commands from this source tree (its src/ folder).")
    args = parser.parse_args()
    tl = [sys.executable, "-m", "testledger"]
    import testledger

    byte_compile(Path(testledger.__file__).parent, *([Path(args.before) / "testledger"] if args.before else []))
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**os.environ, "TESTLEDGER_HOME": str(home)}
        env.pop("TESTLEDGER_DATABASE_URL", None)
        report = home / "report.xml"
        _report(report)
        subprocess.run([*tl, "ingest", str(report), "-p", "bench"], env=env, capture_output=True, check=False)
        key = subprocess.run([*tl, "runs", "list", "--json"], env=env, capture_output=True, check=True,
                             text=True).stdout.split('"execution_id": "')[1].split('"')[0]
        pipeline = home / "one.yaml"
        pipeline.write_text('key: one\nname: one true command\ncases:\n  - {key: c0, command: "true"}\n')
        subprocess.run([*tl, "pipelines", "apply", str(pipeline)], env=env, capture_output=True, check=True)
        commands = {
            "testledger --help": [*tl, "--help"],
            "testledger runs list": [*tl, "runs", "list"],
            f"testledger runs show {key}": [*tl, "runs", "show", key],
            f"testledger ingest ({CASES} cases)": [*tl, "ingest", str(report), "-p", "bench"],
            "testledger run one (1 case, by key)": [*tl, "run", "one"],
        }
        # What every store command imports before any of its own work: the SQLite dialect, Typer, and
        # pydantic with the schemas the services return (the contract every adapter shares).
        floor = "import sqlalchemy.dialects.sqlite, typer, testledger.schemas"
        runs: list[tuple[str, list[str], dict[str, str]]] = [
            ('python -c "import sqlalchemy" (baseline)', [sys.executable, "-c", "import sqlalchemy"], env),
            (f'python -c "{floor}" (dependency floor)', [sys.executable, "-c", floor], env)]
        for name, argv in commands.items():
            runs.append((name, argv, env))
            if args.before:
                runs.append((f"{name} (before)", argv, {**env, "PYTHONPATH": args.before}))
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _argv, _env in runs}
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}", file=sys.stderr)
            for name, argv, run_env in runs:
                samples[name].append(_time(argv, run_env))
    wall = {name: statistics.median(w for w, _c in values) for name, values in samples.items()}
    cpu = {name: statistics.median(c for _w, c in values) for name, values in samples.items()}
    base = 'python -c "import sqlalchemy" (baseline)'
    rows = [[name, f"{wall[name] * 1000:.0f} ms", f"{wall[name] / wall[base]:.2f}x", f"{cpu[name] * 1000:.0f} ms",
             f"{cpu[name] / cpu[base]:.2f}x"] for name in samples]
    print("\n".join(f"- {k}: {v}" for k, v in machine_info().items()))
    print(f"- load average before / after: {load_before} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\nMedian of {args.repeat} processes each, alternated.\n")
    print(markdown_table(["command", "median wall", "vs import sqlalchemy", "median CPU", "CPU vs import sqlalchemy"],
                         rows))


if __name__ == "__main__":
    main()
