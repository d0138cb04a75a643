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
    # 8 pipeline cases, one of them the pytest case that groups 3 tests: 10 tests in 11 results.
    assert len(run["cases"]) == 11
    assert (run["result"], run["totals"]["tests"], run["totals"]["passed"]) == ("PASSED", 10, 10)
    subs = [c for c in run["cases"] if c["parent_index"] is not None]
    assert len(subs) == 3 and {c["parent_index"] for c in subs} == {2}
    tree = local_cli("runs", "show", run["execution_id"]).stdout
    assert "Totals: 10 tests, 10 passed" in tree
    assert f"{subs[0]['index']}: {subs[0]['name']} - PASSED" in tree  # the index `runs case` takes
    assert "s3cret" not in result.stdout and run["parameters"]["api_token"] == "***"
    log = local_cli("logs", run["execution_id"], "--case", "6").stdout
    assert log.strip() == "token is ***"


def test_example_exports_count_the_tests_they_list(sqlite_only: Path, local_cli: Any, tmp_path: Path) -> None:
    from lxml import etree

    port = _free_port()
    run = json.loads(local_cli("run", str(EXAMPLE), "--json", "--param", f"port={port}",
                               "--param", f"base_url=http://127.0.0.1:{port}").stdout)
    key = run["execution_id"]
    junit_path, ctrf_path = tmp_path / "out.xml", tmp_path / "out.json"
    assert local_cli("export", key, "--format", "junit", "-o", str(junit_path)).code == 0
    assert local_cli("export", key, "--format", "ctrf", "-o", str(ctrf_path)).code == 0
    text = junit_path.read_text()
    assert text.endswith("</testsuites>\n") and "\n    <testcase " in text  # indented lines
    root = etree.fromstring(junit_path.read_bytes())
    cases = root.findall(".//testcase")
    assert int(root.get("tests") or -1) == len(cases) == 10
    assert all(case.get("classname") for case in cases)
    unit = root.find("testsuite[@name='Unit tests']")  # the pytest case keeps its tests under it
    assert unit is not None and len(unit.findall("testcase")) == 3
    ctrf = json.loads(ctrf_path.read_text())
    assert ctrf["specVersion"] == "1.0.0"
    tests = ctrf["results"]["tests"]
    assert ctrf["results"]["summary"]["tests"] == len(tests) == 10
    assert sum(t.get("suite", [""])[0] == "Unit tests" for t in tests) == 3
    assert all(isinstance(t["duration"], int) for t in tests)
