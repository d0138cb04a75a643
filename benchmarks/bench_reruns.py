"""Reruns merged into stored results, beside as many unique results, and reports that repeat one test.

Report shapes, all ingested through `ingest_files` in this process as `testledger ingest` calls it:
- unique: 2N entries with distinct names (N failures, then N passes of other tests): the baseline;
- reruns: N failures, then the same N tests passing again. Every rerun arrives after its first
  attempt was written (the write batch is 5,000), so it is merged into a stored row;
- same-name failures: M failing entries of one test (the hostile case: all become attempts of one
  result, which keeps the first few in full), at two sizes to show the growth is linear.

    python benchmarks/bench_reruns.py [--reruns 12000] [--same 20000] [--backend both] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_info, markdown_table

from testledger.db.engine import Store
from testledger.schemas import IngestOptions
from testledger.services.ingest import ingest_files

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def unique_report(n: int) -> str:
    failures = "".join(f'<testcase classname="c" name="f{i}" time="1"><failure message="m{i}"/></testcase>'
                       for i in range(n))
    passes = "".join(f'<testcase classname="c" name="p{i}" time="2"/>' for i in range(n))
    return f"<testsuite>{failures}{passes}</testsuite>"


def reruns_report(n: int) -> str:
    failures = "".join(f'<testcase classname="c" name="f{i}" time="1"><failure message="m{i}"/></testcase>'
                       for i in range(n))
    passes = "".join(f'<testcase classname="c" name="f{i}" time="2"/>' for i in range(n))
    return f"<testsuite>{failures}{passes}</testsuite>"


def same_name_report(m: int) -> str:
    return "<testsuite>" + '<testcase classname="c" name="same"><failure message="no"/></testcase>' * m + "</testsuite>"


@contextmanager
def fresh_store(backend: str, folder: Path) -> Iterator[Store]:
    if backend == "sqlite":
        path = folder / f"{uuid.uuid4().hex}.db"
        store = Store(f"sqlite:///{path}")
        try:
            yield store
        finally:
            store.dispose()
            path.unlink()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store = Store(f"{PG_BASE}?options=-csearch_path%3D{schema}", auto_migrate=True)
    try:
        yield store
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def ingest_seconds(backend: str, folder: Path, report: Path) -> float:
    """One ingest into a fresh store, in process, garbage collection paused as the CLI does."""
    options = IngestOptions(actor="bench", pipeline_key="bench", environment="ci", allowed_environments=("ci",),
                            max_report_bytes=1 << 30)
    with fresh_store(backend, folder) as store:
        gc.disable()
        try:
            start = time.perf_counter()
            with store.write() as db:
                ingest_files(db, workspace="WKS", sources=[report], options=options)
            return time.perf_counter() - start
        finally:
            gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reruns", type=int, default=12_000)
    parser.add_argument("--same", type=int, default=20_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reports = {
            f"unique: {2 * args.reruns:,} entries, distinct tests (baseline)": unique_report(args.reruns),
            f"reruns: {args.reruns:,} failures + {args.reruns:,} reruns merged into stored rows":
                reruns_report(args.reruns),
            f"same-name failures: {args.same // 2:,} entries of one test": same_name_report(args.same // 2),
            f"same-name failures: {args.same:,} entries of one test": same_name_report(args.same),
        }
        rows = []
        warm_up = folder / "warm.xml"
        warm_up.write_text(unique_report(10))
        for backend in backends:
            ingest_seconds(backend, folder, warm_up)  # imports and first connections are not what is measured
            medians = []
            for n, (what, body) in enumerate(reports.items()):
                path = folder / f"r{n}.xml"
                path.write_text(body)
                seconds = [ingest_seconds(backend, folder, path) for _ in range(args.repeat)]
                medians.append(statistics.median(seconds))
                print(f"{backend} {what}: {medians[-1]:.2f} s", file=sys.stderr)
                ratio = f"{medians[-1] / medians[0]:.2f}x" if n == 1 else ""
                if n == 3:
                    ratio = f"{medians[-1] / medians[2]:.2f}x the half size"
                rows.append((what, backend, f"{medians[-1]:.2f} s", ratio))
    print(markdown_table(("machine", ""), list(machine_info().items())))
    print()
    print(markdown_table((f"report (median of {args.repeat})", "backend", "ingest", "ratio"), rows))


if __name__ == "__main__":
    main()
