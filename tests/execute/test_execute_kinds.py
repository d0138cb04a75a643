"""The http and pytest case kinds against a real local server and a real pytest run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes: dict[str, tuple[int, Any, float]] = {
            "/ok": (200, {"status": "ok", "items": [{"id": 7}]}, 0),
            "/broken": (500, {"error": "boom"}, 0),
            "/slow": (200, {"status": "ok"}, 0.3),
            "/auth": (200 if self.headers.get("X-Token") == "tok" else 403, {}, 0),
        }
        status, body, delay = routes.get(self.path, (404, {}, 0))
        time.sleep(delay)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_http_checks_status_json_and_latency(
    fast: Path, server: str, run_json: Callable[..., Any], pipeline_file: Callable[..., Path]
) -> None:
    path = pipeline_file(f"""\
        key: api
        parameters:
          base: {server}
        parallelism: 4
        cases:
          - key: ok
            http: {{url: "${{{{ params.base }}}}/ok", expect: {{json: {{"$.status": ok, "$.items[0].id": 7}}}}}}
          - key: broken
            http: {{url: "${{{{ params.base }}}}/broken"}}
          - key: wrong-json
            http: {{url: "${{{{ params.base }}}}/ok", expect: {{json: {{"$.status": down}}}}}}
          - key: slow
            http: {{url: "${{{{ params.base }}}}/slow", expect: {{max_ms: 100}}}}
          - key: header
            http: {{method: get, url: "${{{{ params.base }}}}/auth", headers: {{X-Token: tok}}}}
          - key: refused
            http: {{url: "http://127.0.0.1:{_free_port()}/"}}
        """)
    finished = run_json(path)
    assert finished.case("ok")["status"] == "PASSED"
    assert finished.case("header")["status"] == "PASSED"
    broken = finished.case("broken")
    assert (broken["status"], broken["error"], broken["failure_category"]) == (
        "FAILED", "AssertionError: Expected status 200, got 500", "assertion")
    assert finished.case("wrong-json")["error"] == 'AssertionError: Expected $.status to be "down", got "ok"'
    slow = finished.case("slow")
    assert slow["status"] == "FAILED" and slow["error"].startswith("AssertionError: Expected a response within 100ms")
    refused = finished.case("refused")
    assert (refused["status"], refused["failure_category"]) == ("ERROR", "infrastructure")
    assert finished.code == 2  # an infrastructure fault makes the run's result error


def test_pytest_tests_become_sub_results(
    fast: Path, run_json: Callable[..., Any], pipeline_file: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_sample.py").write_text(
        "def test_good():\n    pass\n\n"
        "def test_bad():\n    assert 1 == 2, 'numbers differ'\n\n"
        "def test_broken():\n    raise RuntimeError('kaput')\n"
    )
    path = pipeline_file("""\
        key: py
        cases:
          - {key: first, command: "true"}
          - key: unit
            pytest: {target: suite, args: ["-p", "no:cacheprovider"]}
          - {key: last, command: "true"}
        """)
    finished = run_json(path)
    cases = finished.run["cases"]
    assert [c["index"] for c in cases] == [0, 1, 2, 3, 4, 5]
    unit = finished.case("unit")
    assert unit["status"] == "FAILED" and unit["error"].startswith("2 of 3 tests failed")
    subs = {c["name"]: c for c in cases if c["parent_index"] == 1}
    assert set(subs) == {"test_good", "test_bad", "test_broken"}
    assert all(c["index"] >= 3 for c in subs.values())
    assert subs["test_good"]["status"] == "PASSED"
    assert subs["test_bad"]["status"] == "FAILED" and "numbers differ" in subs["test_bad"]["error"]
    assert subs["test_bad"]["failure_category"] == "assertion"
    broken = subs["test_broken"]  # a RuntimeError is the test's failure, and not an assertion
    assert (broken["status"], broken["failure_category"], broken["error"]) == ("FAILED", "error", "RuntimeError: kaput")
    # Leaf results are the tests: two commands and three pytest tests; the pytest case is their group.
    assert finished.run["totals"] == {"tests": 5, "passed": 3, "failed": 2, "errors": 0, "skipped": 0, "flaky": 0}


def test_a_pytest_case_that_fails_after_its_tests_passed_is_counted(
    fast: Path, run_json: Callable[..., Any], pipeline_file: Callable[..., Path], tmp_path: Path, cli: Any
) -> None:
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_fine.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    (tmp_path / "suite" / "conftest.py").write_text(  # pytest ends badly after both tests passed
        "def pytest_sessionfinish(session, exitstatus):\n    session.exitstatus = 3\n"
    )
    path = pipeline_file("""\
        key: py-crash
        cases:
          - key: unit
            pytest: {target: suite, args: ["-p", "no:cacheprovider"]}
        """)
    finished = run_json(path)
    assert finished.case("unit")["status"] == "ERROR"
    # Its two tests passed, yet the case did not: it counts as a test of its own, never hidden.
    assert finished.run["totals"] | {"flaky": 0} == {
        "tests": 3, "passed": 2, "failed": 0, "errors": 1, "skipped": 0, "flaky": 0}
    assert finished.run["result"] == "FAILED" and finished.code == 1
    out = tmp_path / "out.xml"
    assert cli("export", finished.run["execution_id"], "-o", str(out)).code == 0
    from lxml import etree

    root = etree.fromstring(out.read_bytes())
    assert int(root.get("tests") or -1) == len(root.findall(".//testcase")) == 3


def test_pytest_runs_under_the_interpreter_the_case_names(
    sqlite_only: Path, local_run: Callable[..., Any], pipeline_file: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_where.py").write_text(
        "import os\n\ndef test_interpreter():\n    assert os.environ.get('RUN_BY_WRAPPER') == '1'\n"
    )
    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "bin" / "python-link"  # stands for a project's own interpreter
    wrapper.write_text(f'#!/bin/sh\nRUN_BY_WRAPPER=1 exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    path = pipeline_file("""\
        key: py-where
        cases:
          - key: unit
            pytest: {target: suite, python: bin/python-link, args: ["-p", "no:cacheprovider"]}
          - key: missing
            pytest: {target: suite, python: bin/no-such-python}
        """)
    finished = local_run(path)
    assert finished.case("unit")["status"] == "PASSED"
    missing = finished.case("missing")
    assert missing["status"] == "ERROR" and missing["failure_category"] == "infrastructure"
    assert "cannot start the process" in missing["error"]


_OUT_OF_DESCRIPTORS = """
import os, resource, sys, threading
from pathlib import Path
from testledger.execute.logstore import CaseOutput, FileLogStore
from testledger.execute.masking import Masker
from testledger.execute.process import ProcessGroups, run_process

logs = FileLogStore(Path(sys.argv[1]))
logs.prepare("R")
output = CaseOutput(logs, logs.ref("R", 0), Masker(()))
groups = ProcessGroups()
held = []
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    os.close(held.pop())  # one free descriptor: a pipe needs two
outcome = run_process(["/bin/sh", "-c", "true"], cwd=Path.cwd(), env=dict(os.environ), deadline=None,
                      output=output, groups=groups, stop=threading.Event(), grace=1.0)
print(outcome.exit_code, outcome.spawn_error)
"""


def test_a_case_that_finds_no_free_descriptor_could_not_start(tmp_path: Path) -> None:
    """Out of file descriptors, a case is one that could not start (exit 127, the reason kept), as a
    missing program is, not a failure of the executor."""
    done = subprocess.run([sys.executable, "-c", _OUT_OF_DESCRIPTORS, str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "127 OSError: [Errno 24] Too many open files"
