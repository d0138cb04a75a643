"""Reading pipeline files within bounds: a large real pipeline beside PyYAML alone, and hostile ones refused.

A 9,000-case pipeline (~770 KB, under the 1 MiB limit) is parsed by `parse_pipeline` (bounded
loader, marks, validation) beside `yaml.safe_load` of the same text (PyYAML's pure-Python loader
alone, which the product used before the limits) and `yaml.CSafeLoader` (libyaml alone, unbounded).
Then `testledger pipelines validate` is run as a process on
the hostile documents of issue 8 (alias bomb, merge-key bomb, 50,000 nested brackets, 100,000-digit
number) and on a one-case file (the fixed cost of starting the CLI), each capped at 1 GB of
address space, recording wall time, peak RSS and the exit code (3 = refused clearly).

`--apply` times `testledger pipelines apply` of the large pipeline as a process (as `testledger run FILE`
applies it first), median of `--repeat` rounds on a fresh SQLite store: a new pipeline (every case new), a
new version of it (every case known, renamed) and the same file again (unchanged: the file read, validated
and compared, nothing written), the baseline measured in the same rounds. `--before SRC` also runs them
from another source tree (its src/ folder, e.g. a `git worktree` of an earlier commit), alternated.

    python benchmarks/bench_pipelines.py [--repeat 3] [--apply [--before /tmp/base/src]]
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

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import byte_compile, machine_info, markdown_table

import testledger
from testledger.pipelinefile import parse_pipeline

LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
     *(f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True))]
) + "\nkey: bomb\ncases: *i\n"
MERGES = "\n".join(
    ["a: &a {x: 1, y: 2}",
     *(f"{n}: &{n} {{<<: [*{p}, *{p}, *{p}, *{p}]}}" for p, n in zip("abcdefghijklmnopq", "bcdefghijklmnopqr",
                                                                    strict=True))]
) + "\nkey: bomb\ncases:\n  - {key: a, http: {url: 'http://x/', body: *r}}\n"
HOSTILE = {
    "one case (CLI start)": "key: one\ncases:\n  - {key: a, command: 'true'}\n",
    f"alias bomb ({len(LAUGHS)} bytes)": LAUGHS,
    "merge-key bomb": MERGES,
    "50,000 nested brackets": "key: deep\ncases: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "100,000-digit number": "key: big\nparallelism: " + "9" * 100_000 + "\ncases: []\n",
}


def large_pipeline(cases: int) -> str:
    lines = [f"  - {{key: c{i}, name: case {i}, command: 'echo ${{{{ params.x }}}} {i}', timeout: 10s}}"
             for i in range(cases)]
    return "key: big\nparameters: {x: 1}\ncases:\n" + "\n".join(lines) + "\n"


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def apply_seconds(path: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "testledger", "pipelines", "apply", str(path)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def apply_rows(cases: int, repeat: int, before: str | None) -> list[list[str]]:
    """`pipelines apply` of a new pipeline, of a new version of it and of the same file, per source tree."""
    sides = {"": {}} if before is None else {"": {}, " (before)": {"PYTHONPATH": before}}
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as home:
        base = {**os.environ, "TESTLEDGER_HOME": home, "TESTLEDGER_ACTOR": "bench"}
        base.pop("TESTLEDGER_DATABASE_URL", None)
        subprocess.run([sys.executable, "-m", "testledger", "db", "upgrade"], env=base, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for round_ in range(repeat):
            for side, extra in sides.items():
                env = {**base, **extra}
                key = f"big-{round_}{'-before' if extra else ''}"
                path = Path(home) / f"{key}.yaml"
                path.write_text(large_pipeline(cases).replace("key: big", f"key: {key}", 1))
                times.setdefault((side, "new pipeline"), []).append(apply_seconds(path, env))
                path.write_text(path.read_text().replace("name: case", "name: renamed case"))
                times.setdefault((side, "new version"), []).append(apply_seconds(path, env))
                times.setdefault((side, "unchanged"), []).append(apply_seconds(path, env))
    rows = []
    for side in sides:
        unchanged = statistics.median(times[(side, "unchanged")])
        for what in ("new pipeline", "new version"):
            seconds = statistics.median(times[(side, what)])
            print(f"apply{side} {what}: {' '.join(f'{t:.2f}' for t in times[(side, what)])}", file=sys.stderr)
            rows.append([f"`pipelines apply`{side}, {cases:,} cases: {what}", f"{seconds:.2f} s",
                         f"the same file unchanged {unchanged:.2f} s", f"{seconds / unchanged:.2f}x"])
    return rows


def validate(path: Path) -> tuple[float, int, int]:
    """(seconds, peak RSS in MB, exit code) of `testledger pipelines validate path` under a 1 GB cap."""
    probe = ("import resource, sys, subprocess; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
             "code = subprocess.call([sys.executable, '-m', 'testledger', 'pipelines', 'validate', sys.argv[1]], "
             "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ)).stdout.split()
    return time.perf_counter() - started, int(out[0]) // 1024, int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", type=int, default=9000)
    parser.add_argument("--apply", action="store_true", help="Time `pipelines apply` of the large pipeline only.")
    parser.add_argument("--before", help="With --apply: also run from this source tree (its src/ folder), alternated.")
    args = parser.parse_args()
    if args.apply:
        byte_compile(Path(testledger.__file__).parent, *([Path(args.before) / "testledger"] if args.before else []))
        print(f"machine: {machine_info()}", file=sys.stderr)
        rows = apply_rows(args.cases, args.repeat, args.before)
        print(markdown_table(["case", "measured", "baseline", "ratio"], rows))
        return
    text = large_pipeline(args.cases)
    print(f"machine: {machine_info()}", file=sys.stderr)
    ours = best(lambda: parse_pipeline(text), args.repeat)
    base = best(lambda: yaml.safe_load(text), args.repeat)
    fast = best(lambda: yaml.load(text, Loader=yaml.CSafeLoader), args.repeat)
    rows = [[f"{args.cases:,}-case pipeline, {len(text) // 1024} KB: parse_pipeline", f"{ours:.2f} s",
             f"yaml.safe_load {base:.2f} s / CSafeLoader {fast:.2f} s", f"{ours / base:.2f}x / {ours / fast:.2f}x"]]
    with tempfile.TemporaryDirectory() as tmp:
        for name, document in HOSTILE.items():
            path = Path(tmp) / "p.yaml"
            path.write_text(document)
            seconds, peak, code = validate(path)
            rows.append([f"`pipelines validate`: {name}", f"{seconds:.2f} s, {peak} MB", f"exit {code}", "-"])
            print(f"{name}: {seconds:.2f}s {peak} MB exit {code}", file=sys.stderr)
    print(markdown_table(["case", "measured", "baseline / outcome", "ratio"], rows))


if __name__ == "__main__":
    main()
