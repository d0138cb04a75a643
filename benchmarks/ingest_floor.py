"""The ingest floor: a plain script that stores a JUnit file's cases as fast as Python plainly can.

Run as one whole process beside `testledger ingest` (bench_ingest.py), or in process for many small
reports on one connection, one transaction each (`connect`, `ingest`): it streams the file with lxml
iterparse, derives a hash key per test, and inserts cases (insert-or-ignore) and results (with an
index on the case) by sqlite3 executemany in one transaction. No bounds, no formats, no run
bookkeeping: what the product does beyond this is its own cost. `connect_pg` and `ingest_pg` do the
same on PostgreSQL (cases by executemany with ON CONFLICT DO NOTHING, results by COPY).

Several reports, or a folder of them (its `*.xml`, sorted), are one run in one transaction, their
results numbered on from one file to the next, as `testledger ingest` stores a folder. STORE is a
SQLite file, or a libpq conninfo (`host=... dbname=... options=-csearch_path=SCHEMA`: give it an
empty schema) for PostgreSQL.

    python benchmarks/ingest_floor.py REPORT.xml|FOLDER ... STORE
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cases (id INTEGER PRIMARY KEY, identity TEXT, name TEXT, classname TEXT)",
    "CREATE TABLE IF NOT EXISTS results (run INTEGER, idx INTEGER, case_id INTEGER, status TEXT, "
    "duration REAL, message TEXT, trace TEXT, stdout TEXT, PRIMARY KEY (run, idx))",
    "CREATE INDEX IF NOT EXISTS results_case ON results (case_id)",
)
#: The same tables on PostgreSQL, with 64-bit keys (the hash key is a signed 64-bit integer).
PG_SCHEMA = tuple(s.replace("id INTEGER", "id BIGINT") for s in SCHEMA)
BATCH = 5000


def main(sources: list[str], store: str) -> None:
    reports = [str(f) for s in sources for f in (sorted(Path(s).glob("*.xml")) if Path(s).is_dir() else [s])]
    if store.startswith(("host=", "postgresql://")):
        conn = connect_pg(store)
        ingest_pg(conn, *reports)
    else:
        conn = connect(store)
        ingest(conn, *reports)
    conn.close()


def connect(store: str) -> sqlite3.Connection:
    db = sqlite3.connect(store, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # as the product's store: a commit does not wait for the disk
    for statement in SCHEMA:
        db.execute(statement)
    return db


def ingest(db: sqlite3.Connection, *reports: str) -> None:
    """The reports in one transaction (a run: the next number)."""
    db.execute("BEGIN")
    run = db.execute("SELECT coalesce(max(run), 0) + 1 FROM results").fetchone()[0]
    for cases, results in _batches(reports, run):
        db.executemany("INSERT OR IGNORE INTO cases VALUES (?, ?, ?, ?)", cases)
        db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", results)
    db.execute("COMMIT")


def connect_pg(conninfo: str) -> Any:
    """A psycopg connection with the floor's tables in its search path (give it an empty schema)."""
    import psycopg  # here: the SQLite floor runs as a whole process and must not pay for it

    conn = psycopg.connect(conninfo)
    for statement in PG_SCHEMA:
        conn.execute(statement)
    conn.commit()
    return conn


def ingest_pg(conn: Any, *reports: str) -> None:
    """The reports in one transaction on PostgreSQL: cases insert-or-ignore, results by COPY."""
    with conn.transaction(), conn.cursor() as cur:
        run = cur.execute("SELECT coalesce(max(run), 0) + 1 FROM results").fetchone()[0]
        for cases, results in _batches(reports, run):
            cur.executemany("INSERT INTO cases VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", cases)
            with cur.copy("COPY results FROM STDIN") as copy:
                for row in results:
                    copy.write_row(row)


def case_key(identity: str) -> int:
    """A test's key: a signed 64-bit hash of its identity (`classname::name`)."""
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=8).digest(), "big", signed=True)


def _batches(reports: tuple[str, ...], run: int) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]:
    """The reports' case and result rows, at most BATCH at a time, numbered on across the reports."""
    cases: list[tuple[object, ...]] = []
    results: list[tuple[object, ...]] = []
    testcases = (case for report in reports for _, case in etree.iterparse(report, tag="testcase"))
    for idx, case in enumerate(testcases):
        identity = f"{case.get('classname', '')}::{case.get('name', '')}"
        key = case_key(identity)
        status, message, trace, stdout = "passed", None, None, None
        for child in case:
            if child.tag in ("failure", "error"):
                status = "failed" if child.tag == "failure" else "error"
                message, trace = child.get("message"), child.text
            elif child.tag == "skipped":
                status = "skipped"
            elif child.tag == "system-out":
                stdout = child.text
        cases.append((key, identity, case.get("name"), case.get("classname")))
        results.append((run, idx, key, status, float(case.get("time") or 0), message, trace, stdout))
        case.clear(keep_tail=True)
        while case.getprevious() is not None:
            del case.getparent()[0]
        if len(results) >= BATCH:
            yield cases, results
            cases, results = [], []
    yield cases, results


if __name__ == "__main__":
    main(sys.argv[1:-1], sys.argv[-1])
