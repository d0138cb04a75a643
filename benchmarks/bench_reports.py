"""Large and hostile reports: streaming JSON against loading it whole, and the gzip size check.

Each measurement runs in a fresh child process so its peak RSS is its own. Baselines measured in
the same run: the previous JSON path (`json.loads` of the whole document, then the same per-test
conversion) and plain gunzip of the same file (the floor of the gzip size check).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import fmt_rate, machine_info, markdown_table, rate

CASE = b'<testcase classname="pkg.Class" name="test_case"/>\n'


def write_ctrf(path: Path, tests: int) -> None:
    with path.open("w") as out:
        out.write('{"results": {"tool": {"name": "bench"}, "tests": [')
        row = ('{"name": "test %d", "status": "%s", "duration": 12, "suite": ["a", "b"], '
               '"message": %s, "stdout": ["line one", "line two"]}')
        out.write(",".join(row % (i, "failed" if i % 20 == 0 else "passed", '"boom"' if i % 20 == 0 else "null")
                           for i in range(tests)))
        out.write("]}}")


def write_case_bomb(path: Path, megabytes: int) -> None:
    block = CASE * ((1 << 20) // len(CASE))
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.writelines([b"<testsuite>", *itertools.repeat(block, megabytes), b"</testsuite>"])


# -- what each child process runs ------------------------------------------------------------------


def child_stream(path: str) -> int:
    from testledger.ingest.model import ReportInfo
    from testledger.ingest.parsers import get_parser

    with open(path, "rb") as stream:
        return sum(1 for _ in get_parser("ctrf").parse(stream, name="b.json", info=ReportInfo(format="ctrf")))


def child_whole(path: str) -> int:
    from testledger.ingest.parsers.ctrf import _case

    with open(path, "rb") as stream:
        document = json.loads(stream.read())
    return sum(1 for test in document["results"]["tests"] if _case(test) is not None)


def child_gunzip(path: str) -> int:
    size = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            size += len(chunk)
    return size


def child_refuse(path: str) -> int:
    from testledger.ingest.model import ReportParseError
    from testledger.ingest.sources import open_report

    try:
        with open_report(Path(path), max_bytes=512 * 1024 * 1024) as stream:
            stream.read(1)
    except ReportParseError:
        return 1
    return 0


def child_check_then_read(path: str) -> int:
    from testledger.ingest.sources import open_report

    size = 0
    with open_report(Path(path), max_bytes=512 * 1024 * 1024) as stream:
        while chunk := stream.read(1 << 20):
            size += len(chunk)
    return size


CHILDREN = {f.__name__: f for f in (child_stream, child_whole, child_gunzip, child_refuse, child_check_then_read)}


def measure(kind: str, path: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, result) of running `kind` on `path` in a child process."""
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], check=True,
                         capture_output=True, text=True).stdout
    seconds, peak, result = out.split()
    return float(seconds), float(peak), int(result)


def run_child(kind: str, path: str) -> None:
    import testledger.ingest.parsers
    import testledger.ingest.sources  # noqa: F401  (imports are not what is measured)

    started = time.perf_counter()
    result = CHILDREN[kind](path)
    seconds = time.perf_counter() - started
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
    with open("/proc/self/status") as status:
        peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    print(f"{seconds:.3f} {peak_mb:.0f} {result}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=500_000, help="tests in the CTRF report")
    parser.add_argument("--bomb-mb", type=int, default=1200, help="decompressed size of the gzip bomb, MB")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child)
        return
    import ijson

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ctrf = Path(tmp) / "big.json"
        write_ctrf(ctrf, args.tests)
        size = f"{ctrf.stat().st_size / 2**20:.0f} MiB"
        for label, kind in (("CTRF, streamed (ijson, this version)", "child_stream"),
                            ("CTRF, loaded whole (json.loads, before; baseline)", "child_whole")):
            seconds, peak, count = measure(kind, ctrf)
            rows.append((label, f"{count:,} tests, {size}", f"{seconds:.2f} s", fmt_rate(rate(count, seconds)),
                         f"{peak:.0f} MB"))
        bomb = Path(tmp) / "bomb.xml.gz"
        write_case_bomb(bomb, args.bomb_mb)
        what = f"{bomb.stat().st_size / 2**20:.1f} MiB gz, {args.bomb_mb:,} MiB of small cases"
        seconds, peak, _ = measure("child_refuse", bomb)
        rows.append(("gzip bomb refused at the 512 MiB default", what, f"{seconds:.2f} s", "-", f"{peak:.0f} MB"))
        seconds, peak, _ = measure("child_gunzip", bomb)
        rows.append(("plain gunzip of the whole bomb (baseline)", what, f"{seconds:.2f} s", "-", f"{peak:.0f} MB"))
        legit = Path(tmp) / "legit.xml.gz"
        write_case_bomb(legit, 100)
        what = f"{legit.stat().st_size / 2**20:.1f} MiB gz, 100 MiB"
        seconds, peak, _ = measure("child_check_then_read", legit)
        rows.append(("size check + reading a legitimate .gz", what, f"{seconds:.2f} s", "-", f"{peak:.0f} MB"))
        seconds, peak, _ = measure("child_gunzip", legit)
        rows.append(("plain gunzip of it (baseline)", what, f"{seconds:.2f} s", "-", f"{peak:.0f} MB"))
    print(markdown_table(["machine", ""], list(machine_info(ijson=f"{ijson.__version__} ({ijson.backend})").items())))
    print()
    print(markdown_table(["measurement", "data", "time", "tests/s", "peak RSS"], rows))


if __name__ == "__main__":
    main()
