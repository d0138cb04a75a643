"""Quick JUnit parse-speed measurement (a script, not a test): ``python tests/ingest/junit_speed.py``.

Generates a synthetic report shaped like PERFORMANCE.md's (100k cases, 5% failures with 1-3 KB
tracebacks, 10% with system-out) and prints cases/s for the JUnit parser next to a bare lxml
iterparse + clear() loop, so the ratio can be compared on a noisy machine.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from lxml import etree

from testledger.ingest.model import ReportInfo
from testledger.ingest.parsers.junit import JUnitParser


def write_report(path: Path, cases: int, *, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n')
        for suite in range(cases // 100):
            out.write(f'<testsuite name="suite{suite}" tests="100" time="1.0">\n')
            for index in range(100):
                roll = rng.random()
                out.write(
                    f'  <testcase classname="pkg.mod{suite}.Cls" name="test_{index}[p{index}]" time="0.{index:03d}"'
                )
                if roll < 0.05:
                    frames = "".join(
                        f'  File "m.py", line {i}, in f\n    assert x == {i}\n' for i in range(rng.randint(20, 60))
                    )
                    out.write(
                        f'>\n    <failure message="assert 1 == 2" type="AssertionError">{frames}</failure>\n'
                        "  </testcase>\n"
                    )
                elif roll < 0.15:
                    out.write(f">\n    <system-out>output line\nline {index}\n</system-out>\n  </testcase>\n")
                else:
                    out.write("/>\n")
            out.write("</testsuite>\n")
        out.write("</testsuites>\n")


def bare_lxml(path: Path) -> float:
    started = time.perf_counter()
    count = 0
    for _event, elem in etree.iterparse(str(path), events=("end",), tag="testcase", resolve_entities=False):
        count += 1
        elem.clear()
        while elem.getprevious() is not None:
            del elem.getparent()[0]
    return count / (time.perf_counter() - started)


def parser_speed(path: Path) -> tuple[float, float]:
    tracemalloc.start()
    started = time.perf_counter()
    with path.open("rb") as stream:
        count = sum(1 for _ in JUnitParser().parse(stream, name=path.name, info=ReportInfo(format="junit")))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    started = time.perf_counter()
    with path.open("rb") as stream:
        count = sum(1 for _ in JUnitParser().parse(stream, name=path.name, info=ReportInfo(format="junit")))
    elapsed = min(elapsed, time.perf_counter() - started)
    return count / elapsed, peak / 2**20


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    options.add_argument("--cases", type=int, default=100_000)
    options.add_argument("--rounds", type=int, default=3)
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "junit.xml"
        write_report(path, args.cases)
        print(f"{args.cases:,} cases, {path.stat().st_size / 2**20:.1f} MB")
        for _ in range(args.rounds):
            baseline = bare_lxml(path)
            speed, peak = parser_speed(path)
            print(
                f"bare lxml iterparse+clear {baseline:>10,.0f} cases/s | JUnitParser {speed:>10,.0f} cases/s "
                f"({speed / baseline:.0%} of bare), tracemalloc peak {peak:.1f} MB"
            )


if __name__ == "__main__":
    main()
