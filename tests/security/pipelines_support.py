"""Shared by the pipeline attack tests: write a pipeline file, run `testledger` in-process or as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def write_pipeline(directory: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@dataclass
class Ran:
    code: int
    run: dict[str, Any]
    stderr: str


def run_json(cli: Any, *args: str) -> Ran:
    """`testledger run ARGS --json` in-process, the printed run parsed."""
    result = cli("run", *args, "--json")
    assert result.stdout.strip(), result.stderr
    return Ran(result.code, json.loads(result.stdout), result.stderr)


def limited_process(*args: str, timeout: float = 30, memory_mb: int = 1024) -> subprocess.CompletedProcess[str]:
    """`testledger ARGS` as a process capped at `memory_mb` of address space and `timeout` seconds, so a
    bomb that is not refused fails the test instead of the machine."""

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))

    return subprocess.run(
        [sys.executable, "-m", "testledger", *args], env=dict(os.environ), capture_output=True, text=True,
        timeout=timeout, preexec_fn=limit,
    )
