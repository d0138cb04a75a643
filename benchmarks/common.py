"""Shared benchmark helpers: machine facts, a stopwatch, latency summaries, a markdown table writer, and the
analytics queue insert left out for a measurement."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Stopwatch:
    """Accumulates elapsed seconds over any number of `with sw.timing():` blocks."""

    seconds: float = 0.0

    @contextmanager
    def timing(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start


def ram_gib() -> float | None:
    """Total memory from /proc/meminfo, or None where it is not available."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def machine_info(**extra: str) -> dict[str, str]:
    """Cores, RAM, Python, SQLite and the date; pass further versions (e.g. postgresql=...) as keywords."""
    ram = ram_gib()
    info = {
        "cores": str(os.cpu_count()),
        "RAM": f"{ram:.1f} GiB" if ram else "?",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    info.update(extra)
    return info


def latency_ms(samples: Sequence[float]) -> tuple[float, float]:
    """Median and p95 (nearest rank) in milliseconds of samples given in seconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return statistics.median(ordered) * 1000, p95 * 1000


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def fmt_rate(per_second: float | None) -> str:
    """A rate as `123k/s` (or `-` when not measured)."""
    if per_second is None:
        return "-"
    return f"{per_second / 1000:,.0f}k/s" if per_second >= 10_000 else f"{per_second:,.0f}/s"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; cells are str()-ed and `|` is escaped."""

    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)])


@contextmanager
def analytics_queue_off() -> Iterator[None]:
    """Runs that end are not queued for the analytics fold (the one insert analytics adds to an ingest),
    to measure ingest without analytics: the product always queues them; only a benchmark leaves it out."""
    from testledger.db.driver_sql import DriverSql

    real = DriverSql.execute

    def execute(sql: DriverSql, statement: str, params: tuple[Any, ...]) -> Any:
        return None if statement == sql.enqueue else real(sql, statement, params)

    DriverSql.execute = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        DriverSql.execute = real  # type: ignore[method-assign]


def byte_compile(*trees: Path) -> None:
    """Byte-compile source trees, as `pip install` of a wheel does: with PYTHONDONTWRITEBYTECODE set
    (the development machine sets it), an editable install compiles every module of ours in every
    command's process, ~0.3-0.5 s that no installed copy pays."""
    for tree in trees:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=True)
