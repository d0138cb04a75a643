"""Start-up time of everyday commands beside `python -c "import sqlalchemy"`, measured in one run.

Each command runs as its own process (as a user types it) against a fresh SQLite store under a
temporary TESTLEDGER_HOME; the median of `--repeat` runs is compared with the median of the same
number of bare `import sqlalchemy` processes, alternated so machine load hits both alike.

    python benchmarks/bench_startup.py --repeat 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_info, markdown_table

CASES = 100


def _report(path: Path) -> None:
    cases = "".join(f'<testcase classname="bench.Start" name="test_{i}" time="0.001"/>' for i in range(CASES))
    path.write_text(f'<testsuite name="bench" tests="{CASES}">{cases}</testsuite>')


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    tl = [sys.executable, "-m", "testledger"]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**os.environ, "TESTLEDGER_HOME": str(home)}
        env.pop("TESTLEDGER_DATABASE_URL", None)
        report = home / "report.xml"
        _report(report)
        subprocess.run([*tl, "ingest", str(report), "-p", "bench"], env=env, capture_output=True, check=False)
        key = subprocess.run([*tl, "runs", "list", "--json"], env=env, capture_output=True, check=True,
                             text=True).stdout.split('"execution_id": "')[1].split('"')[0]
        commands = {
            'python -c "import sqlalchemy" (baseline)': [sys.executable, "-c", "import sqlalchemy"],
            "testledger --help": [*tl, "--help"],
            "testledger runs list": [*tl, "runs", "list"],
            f"testledger runs show {key}": [*tl, "runs", "show", key],
            f"testledger ingest ({CASES} cases)": [*tl, "ingest", str(report), "-p", "bench"],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}", file=sys.stderr)
            for name, argv in commands.items():
                samples[name].append(_time(argv, env))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians['python -c "import sqlalchemy" (baseline)']
    rows = [[name, f"{seconds * 1000:.0f} ms", f"{seconds / baseline:.2f}x"] for name, seconds in medians.items()]
    print("\n".join(f"- {k}: {v}" for k, v in machine_info().items()))
    print(f"\nMedian of {args.repeat} processes each, alternated.\n")
    print(markdown_table(["command", "median wall", "vs import sqlalchemy"], rows))


if __name__ == "__main__":
    main()
