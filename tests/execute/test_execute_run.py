"""`testledger run`: outcomes, exit codes, retries, time limits and secret masking as a user sees them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

MIXED = """\
key: mixed
name: Mixed outcomes
cases:
  - key: ok
    command: echo hello
  - key: exit3
    command: exit 3
  - key: missing
    command: no-such-command-here
  - key: expected-2
    command: {run: "exit 2", exit_code: 2}
  - key: signal
    command: kill -SEGV $$
  - key: asserts
    command: 'echo "AssertionError: expected 3 items" >&2; exit 1'
  - key: no-exec
    command: touch not-executable.sh; ./not-executable.sh
  - key: bad-dir
    command: {run: "true", workdir: no-such-dir}
"""


def test_passed_run_exits_0_and_records_output(
    fast: Path, run_json: Callable[..., Any], pipeline_file: Callable[..., Path], cli: Any
) -> None:
    path = pipeline_file("key: ok\ncases:\n  - {key: hi, command: 'echo hi from $TESTLEDGER_ATTACHMENTS_DIR'}\n")
    finished = run_json(path)
    assert finished.code == 0
    run = finished.run
    assert (run["status"], run["result"], run["trigger"], run["triggered_by"]) == (
        "COMPLETED", "PASSED", "manual", "tester")
    assert run["environment"] == "local" and run["pipeline_version"] == 1
    detail = json.loads(cli("runs", "show", run["execution_id"], "--json").stdout)
    assert detail == run
    log = cli("logs", run["execution_id"], "--case", "0")
    assert log.stdout.startswith("hi from ") and f"attachments/{run['execution_id']}/0" in log.stdout


def test_a_case_inherits_no_descriptor_of_the_executor(
    sqlite_only: Path, local_run: Callable[..., Any], pipeline_file: Callable[..., Path], local_cli: Any
) -> None:
    """A case holds no descriptor of ours beyond stdin, stdout and stderr, not even one that the
    executor's own parent let it inherit (a CI runner's pipe: a background process holding it could
    keep the CI step waiting)."""
    read, write = os.pipe()
    os.set_inheritable(write, True)
    try:
        path = pipeline_file("""\
            key: fds
            parallelism: 2
            cases:
              - {key: lists, command: "ls /proc/$$/fd"}
              - {key: again, command: "ls /proc/$$/fd"}
            """)
        finished = local_run(path)
    finally:
        os.close(read)
        os.close(write)
    assert finished.code == 0
    for index in ("0", "1"):
        assert local_cli("logs", finished.run["execution_id"], "--case", index).stdout.split() == ["0", "1", "2"]


def test_a_case_reads_an_empty_stdin_not_the_terminal(
    sqlite_only: Path, pipeline_file: Callable[..., Path], spawn: Callable[..., Any]
) -> None:
    """`testledger run` whose own stdin stays open (a terminal, a CI step's pipe): a case reading
    stdin gets end-of-file at once instead of waiting for input nobody gives."""
    path = pipeline_file("""\
        key: stdin
        cases:
          - key: reads
            timeout: 30s
            command: cat; echo read-all
        """)
    proc = spawn("run", str(path), "--json", stdin=subprocess.PIPE)
    try:
        proc.wait(timeout=60)  # not communicate(): that would close the stdin held open here
        out, err = proc.communicate()
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["totals"]["passed"] == 1


def test_failed_cases_say_why(fast: Path, run_json: Callable[..., Any], pipeline_file: Callable[..., Path]) -> None:
    finished = run_json(pipeline_file(MIXED), "--parallel", "3")
    # A command that cannot be found is an infrastructure fault: the run's result is error, exit 2.
    assert finished.code == 2
    assert (finished.run["status"], finished.run["result"]) == ("COMPLETED", "ERROR")
    assert finished.case("ok")["status"] == "PASSED"
    assert finished.case("expected-2")["status"] == "PASSED"
    # A command that ran and exited non-zero failed, as every CI reads it; the output says which kind.
    exit3 = finished.case("exit3")
    assert (exit3["status"], exit3["failure_category"]) == ("FAILED", "error")
    assert exit3["error"] == "exit code 3 (expected 0)"
    asserts = finished.case("asserts")
    assert (asserts["status"], asserts["failure_category"]) == ("FAILED", "assertion")
    signalled = finished.case("signal")
    assert (signalled["status"], signalled["error"], signalled["failure_category"]) == (
        "FAILED", "killed by signal SIGSEGV", "error")
    # A command that could not start has no verdict: ERROR, infrastructure.
    missing = finished.case("missing")
    assert (missing["status"], missing["failure_category"]) == ("ERROR", "infrastructure")
    assert missing["error"] == "exit code 127 (command not found; expected 0)"
    no_exec = finished.case("no-exec")
    assert (no_exec["status"], no_exec["failure_category"]) == ("ERROR", "infrastructure")
    assert no_exec["error"] == "exit code 126 (not executable; expected 0)"
    bad_dir = finished.case("bad-dir")
    assert (bad_dir["status"], bad_dir["failure_category"]) == ("ERROR", "infrastructure")
    assert bad_dir["error"].startswith("cannot start the process: FileNotFoundError")
    assert [c["index"] for c in finished.run["cases"]] == [0, 1, 2, 3, 4, 5, 6, 7]


def test_a_failing_command_fails_the_run_without_erroring_it(
    fast: Path, run_json: Callable[..., Any], pipeline_file: Callable[..., Path]
) -> None:
    path = pipeline_file('key: fails\ncases:\n  - {key: refusal, command: "echo Connection refused; exit 1"}\n')
    finished = run_json(path)
    assert finished.code == 1
    assert (finished.run["status"], finished.run["result"]) == ("COMPLETED", "FAILED")
    assert (finished.case("refusal")["status"], finished.case("refusal")["failure_category"]) == ("FAILED", "error")


def test_retry_then_pass_is_flaky_and_keeps_every_attempt(
    fast: Path, run_json: Callable[..., Any], pipeline_file: Callable[..., Path], cli: Any, tmp_path: Path
) -> None:
    counter = tmp_path / "tries"
    path = pipeline_file(f"""\
        key: retry
        retries: 1
        cases:
          - key: third-time-lucky
            retries: 3
            command: echo x >> {counter}; test $(wc -l < {counter}) -ge 3
          - key: always-fails
            command: exit 1
        """)
    finished = run_json(path)
    lucky = finished.case("third-time-lucky")
    assert (lucky["status"], lucky["flaky"], lucky["attempts"]) == ("PASSED", True, 3)
    failing = finished.case("always-fails")
    assert (failing["status"], failing["flaky"], failing["attempts"]) == ("FAILED", False, 2)
    assert finished.run["totals"]["flaky"] == 1 and finished.code == 1
    detail = cli("runs", "case", finished.run["execution_id"], "0", "--json")
    assert detail.code == 0
    attempts = json.loads(detail.stdout)["attempt_details"]
    assert [a["status"] for a in attempts] == ["FAILED", "FAILED", "PASSED"]


def test_case_timeout_kills_a_child_that_ignores_sigterm(
    sqlite_only: Path, local_run: Callable[..., Any], pipeline_file: Callable[..., Path], tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    path = pipeline_file(f"""\
        key: stubborn
        cases:
          - key: ignores-term
            timeout: 300ms
            command: trap '' TERM; sleep 30 & echo $! > {pids}; echo $$ >> {pids}; wait
          - key: after
            command: "true"
        """)
    started = time.monotonic()
    finished = local_run(path)
    case = finished.case("ignores-term")
    assert (case["status"], case["failure_category"]) == ("FAILED", "timeout")
    assert case["error"] == "TimeoutError: timed out after 300ms; its process group was killed"
    assert finished.case("after")["status"] == "PASSED" and finished.code == 1
    assert time.monotonic() - started < 10
    for pid in map(int, pids.read_text().split()):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_run_time_limit_ends_the_run_as_timeout(
    sqlite_only: Path, local_run: Callable[..., Any], pipeline_file: Callable[..., Path], local_cli: Any
) -> None:
    path = pipeline_file("""\
        key: slow
        timeout: 500ms
        cases:
          - {key: quick, command: "true"}
          - {key: slow, command: sleep 20}
          - {key: never, command: "true"}
        """)
    finished = local_run(path)
    assert finished.code == 2
    assert (finished.run["status"], finished.run["test_run_status"]) == ("TIMEOUT", "error")
    assert finished.case("quick")["status"] == "PASSED"
    slow = finished.case("slow")  # running when the limit hit it: it failed
    assert (slow["status"], slow["failure_category"]) == ("FAILED", "timeout")
    never = finished.case("never")  # never started: skipped, as after a cancel or fail_fast
    assert (never["status"], never["failure_category"]) == ("SKIPPED", None)
    assert never["error"] == "not run: run time limit reached"
    tree = local_cli("runs", "show", finished.run["execution_id"]).stdout
    assert "Case 2: never - SKIPPED" in tree and "not run: run time limit reached" in tree


def test_needs_and_fail_fast_skip_what_cannot_run(
    sqlite_only: Path, local_run: Callable[..., Any], pipeline_file: Callable[..., Path]
) -> None:
    path = pipeline_file("""\
        key: deps
        fail_fast: true
        cases:
          - {key: setup, command: exit 1}
          - {key: uses-setup, needs: [setup], command: "true"}
          - {key: later, command: "true"}
        """)
    finished = local_run(path)
    assert finished.case("uses-setup")["status"] == "SKIPPED"
    assert finished.case("later")["status"] == "SKIPPED"
    assert finished.case("later")["error"] == "not run: fail_fast"
    assert finished.case("uses-setup")["error"] == "not run: needs 'setup', which did not pass"
    assert finished.code == 1


def test_secret_parameters_are_masked_everywhere(
    sqlite_only: Path, local_run: Callable[..., Any], pipeline_file: Callable[..., Path], local_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "hunter2-very-secret"
    monkeypatch.setenv("TL_TEST_SECRET_TOKEN", secret)
    path = pipeline_file("""\
        key: secrets
        parameters:
          token: {from_env: TL_TEST_SECRET_TOKEN, secret: true}
          override: {secret: true}
        cases:
          - key: leaks
            command: echo "token=${{ params.token }}"; printf '%s' "${{ params.override }}" >&2; exit 4
          - key: split
            command: >-
              python3 -c "import sys; [sys.stdout.write(c) or sys.stdout.flush() for c in '${{ params.token }}']"
        """)
    finished = local_run(path, "--param", "override=other-secret-value")
    dumped = json.dumps(finished.run)
    assert secret not in dumped and "other-secret-value" not in dumped
    assert finished.run["parameters"] == {"token": "***", "override": "***"}
    key = finished.run["execution_id"]
    for index in (0, 1):
        log = local_cli("logs", key, "--case", str(index)).stdout
        assert secret not in log and "***" in log
    assert "token=***" in local_cli("logs", key).stdout
    logs_dir = sqlite_only / "logs" / key
    for file in logs_dir.iterdir():
        assert secret.encode() not in file.read_bytes()
    shown = local_cli("runs", "show", key, "--json").stdout
    assert secret not in shown and "other-secret-value" not in shown
    for index in (0, 1):  # the stored results a reader sees in full: message, output, attempts
        detail = local_cli("runs", "case", key, str(index), "--json").stdout
        assert json.loads(detail)["index"] == index
        assert secret not in detail and "other-secret-value" not in detail


def test_a_run_names_how_many_cases_it_has_from_a_file_and_by_key(
    fast: Path, pipeline_file: Callable[..., Path], cli: Any
) -> None:
    path = pipeline_file("key: two\ncases:\n  - {key: a, command: 'true'}\n  - {key: b, command: 'true'}\n")
    for target in (str(path), "two"):  # the file (applied first, then unchanged), then the stored pipeline
        out = cli("run", target).stdout.splitlines()
        assert out[0].startswith("Run WKS-") and out[0].endswith(": 2 cases"), out[:3]
        assert [line.split("]")[0] for line in out[1:3]] == ["[1/2", "[2/2"], out[:3]


def test_a_run_by_key_reads_no_yaml_and_no_orm(
    sqlite_only: Path, pipeline_file: Callable[..., Path], local_cli: Any
) -> None:
    """`run KEY` starts from the stored version: it neither reads a file nor pays for PyYAML's import
    (15 ms of a command whose start-up issue 10 measures); `run FILE` reads YAML, as it must. A run is
    created, started, synced, finished and shown on Core connections: the ORM and the declarative tables
    (~90 ms with their statements' compilation) are not imported, unless `run FILE` has a changed
    document to apply as a new version."""
    path = pipeline_file("key: stored\ncases:\n  - {key: a, command: 'true'}\n")
    local_cli("pipelines", "apply", str(path))

    def loaded(target: str) -> set[str]:
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "testledger", "run", target],
                              env=dict(os.environ), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}

    orm = {"sqlalchemy.orm", "testledger.db.tables", "testledger.db.records"}
    by_key, by_file = loaded("stored"), loaded(str(path))
    assert not ({"yaml"} | orm) & by_key
    assert "yaml" in by_file and not orm & by_file  # the file is the stored version already
    path.write_text(path.read_text().replace("command: 'true'", "command: 'true '"))
    assert orm <= loaded(str(path))  # a new version, applied through the ORM
    listed = local_cli("pipelines", "show", "stored", "--json")
    assert json.loads(listed.stdout)["version"] == 2, listed.stdout
