"""A case printing 200 MB streams to its log: the executor's memory stays flat and the output is masked."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

#: Runs `testledger run` in a fresh interpreter and prints its own peak RSS (KiB on Linux) at the end.
_MEASURE = """\
import resource, sys
from testledger.cli.main import run
try:
    run()
except SystemExit as exc:
    code = exc.code
print(f"maxrss={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} exit={code}", file=sys.stderr)
"""


def _peak_kib(path: Path) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, "run", str(path)], env=dict(os.environ), capture_output=True, text=True,
        timeout=120,
    )
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith("exit=0"), result.stdout + result.stderr
    return int(last.split()[0].removeprefix("maxrss="))


def test_200mb_of_output_does_not_grow_the_executor(
    sqlite_only: Path, pipeline_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TL_TEST_LOUD_TOKEN", "sekrit-0123456789")
    base = _peak_kib(pipeline_file("key: quiet\ncases:\n  - {key: quiet, command: echo hi}\n", "quiet.yaml"))
    loud = pipeline_file("""\
        key: loud
        parameters:
          token: {from_env: TL_TEST_LOUD_TOKEN, secret: true}
        cases:
          - key: loud
            command: >-
              yes 'some output line with sekrit-0123456789 inside' | head -c 200000000
        """, "loud.yaml")
    peak = _peak_kib(loud)
    growth_mb = (peak - base) / 1024
    print(f"executor peak RSS: {base / 1024:.0f} MB quiet, {peak / 1024:.0f} MB for 200 MB of output")
    assert growth_mb < 30, f"peak RSS grew by {growth_mb:.0f} MB for 200 MB of output"
    logs = sorted((sqlite_only / "logs").glob("*/0.log"), key=lambda p: p.stat().st_size)
    log = logs[-1]
    assert log.stat().st_size > 140_000_000  # every line kept; each 17-byte secret became ***
    with log.open("rb") as stream:
        chunk = stream.read(1 << 20)
    assert b"sekrit" not in chunk and b"with *** inside" in chunk
