"""`pytest --testledger` with TESTLEDGER_URL and TESTLEDGER_TOKEN set: the results go to the server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from remoteserver import Server, Use

TESTS = """
import pytest

def test_ok():
    print("hello from the test")

def test_fails():
    assert 1 + 1 == 3

@pytest.mark.parametrize("n", range(6))
def test_loud(n):
    print(str(n) * 200_000)

def test_huge():
    print("x" * 2_000_000)
"""


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a process of its own, with this process's environment (pytester's in-process module
    snapshot would drop the HTTP client's modules imported meanwhile)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=folder,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)


def test_the_plugins_results_arrive_on_the_server(cli: Any, use: Use, server: Server, tmp_path: Path) -> None:
    (tmp_path / "test_remote.py").write_text(TESTS)
    use("runner")  # the pytest process inherits the variables
    result = run_pytest(tmp_path, "--testledger", "--testledger-pipeline", "remote-plugin")
    assert result.returncode == 1
    found = re.search(r"testledger: results recorded in run (\S+)", result.stdout)
    assert found, result.stdout + result.stderr
    key = found[1]
    use(None)
    run = json.loads(cli("runs", "show", key, "--json").stdout)
    assert (run["status"], run["result"], run["pipeline_key"]) == ("COMPLETED", "FAILED", "remote-plugin")
    assert (run["totals"]["tests"], run["totals"]["failed"]) == (9, 1)
    assert cli("logs", key, "--case", "0").stdout == "hello from the test\n"
    # 1.2 MB of output went in more than one request under the server's 1 MiB body limit, intact.
    loud = [c for c in run["cases"] if c["name"].startswith("test_loud")]
    assert len(loud) == 6
    assert cli("logs", key, "--case", str(loud[-1]["index"])).stdout == "5" * 200_000 + "\n"
    huge = next(c for c in run["cases"] if c["name"] == "test_huge")
    assert huge["status"] == "PASSED"  # larger than a request on its own: sent with its output cut


def test_a_viewer_token_cannot_record(use: Use, server: Server, tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_ok():\n    pass\n")
    use("viewer")
    result = run_pytest(tmp_path, "--testledger")
    assert result.returncode == 4
    assert "ERROR: testledger: this needs a runner token; yours is viewer" in result.stderr
