"""The example a new user runs first (`testledger run examples/smoke.yaml`) stays valid and green."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).parents[2] / "examples" / "smoke.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_example_pipeline_validates_and_passes(sqlite_only: Path, local_cli: Any) -> None:
    assert local_cli("pipelines", "validate", str(EXAMPLE)).code == 0
    port = _free_port()  # the example's own port may be taken on a shared machine
    result = local_cli("run", str(EXAMPLE), "--json", "--param", f"port={port}",
                       "--param", f"base_url=http://127.0.0.1:{port}")
    run = json.loads(result.stdout)
    assert result.code == 0, [c for c in run["cases"] if c["status"] != "PASSED"]
    assert (run["result"], run["totals"]["tests"]) == ("PASSED", 8)
    assert any(c["parent_index"] is not None for c in run["cases"])  # the pytest case's own tests
    assert "s3cret" not in result.stdout and run["parameters"]["api_token"] == "***"
    log = local_cli("logs", run["execution_id"], "--case", "6").stdout
    assert log.strip() == "token is ***"
