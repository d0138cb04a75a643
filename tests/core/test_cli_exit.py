"""The `testledger` command leaves without the interpreter's teardown (cli/main.py `console`): what a
user sees of the exit stays as an ordinary exit: the whole output, the exit code, the store closed,
atexit handlers run, and a running thread waited for."""

from __future__ import annotations

import json
import os
import pstats
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

CASES = 3_000


def _testledger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "testledger", *args], env=dict(os.environ), capture_output=True,
                          text=True, timeout=120)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return _python_args(code)


def _python_args(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], env=dict(os.environ), capture_output=True,
                          text=True, timeout=120)


def test_the_whole_output_and_the_exit_code_arrive_and_the_store_is_closed(
    home: Path, store_url: str, tmp_path: Path
) -> None:
    report = tmp_path / "TEST-many.xml"
    cases = "".join(f'<testcase classname="pkg.Test{i % 7}" name="test_{i}" time="0.01"/>' for i in range(CASES))
    failed = '<testcase classname="pkg.Odd" name="test_odd"><failure message="no"/></testcase>'
    report.write_text(f'<testsuite name="many" tests="{CASES + 1}">{cases}{failed}</testsuite>')

    ingested = _testledger("-v", "ingest", str(report), "--pipeline", "many", "--json")

    assert ingested.returncode == 1, ingested.stderr  # the run failed: exit 1, as documented
    run = json.loads(ingested.stdout)  # far more than a pipe's buffer, all of it
    assert run["totals"]["tests"] == CASES + 1 and len(run["cases"]) == CASES + 1
    assert "ingested 1 of 1 reports" in ingested.stderr  # the log reached stderr
    if store_url.startswith("sqlite"):
        database = Path(str(make_url(store_url).database))
        # The last connection closed: SQLite folded its write-ahead log into the file and removed it.
        assert database.exists() and not database.with_name(database.name + "-wal").exists()
    listed = _testledger("runs", "list", "--json")
    assert listed.returncode == 0 and [r["execution_id"] for r in json.loads(listed.stdout)] == [run["execution_id"]]
    missing = _testledger("runs", "show", "NOPE-1")
    assert missing.returncode == 4 and missing.stderr.startswith("error: run 'NOPE-1' not found")


def test_atexit_handlers_run_and_a_running_thread_is_waited_for() -> None:
    leave = "from testledger.cli.main import _leave\n"
    handlers = _python("import atexit\natexit.register(print, 'atexit ran')\n" + leave +
                       "print('output', end=' ')\n_leave(3)")
    assert (handlers.returncode, handlers.stdout) == (3, "output atexit ran\n")

    thread = _python("import threading, time\n" + leave +
                     "threading.Thread(target=lambda: (time.sleep(0.5), print('thread done'))).start()\n_leave(None)")
    assert (thread.returncode, thread.stdout) == (0, "thread done\n")

    message = _python(leave + "_leave('fatal: no store')")  # sys.exit('text'): the text on stderr, exit 1
    assert (message.returncode, message.stderr) == (1, "fatal: no store\n")


def test_a_profiler_still_writes_its_report(tmp_path: Path) -> None:
    """cProfile (and coverage) write at the very end, after the program: the command exits the ordinary way."""
    report = tmp_path / "version.prof"
    profiled = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(report), "-m", "testledger", "--version"],
                              env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert profiled.returncode == 0 and profiled.stdout.startswith("testledger ")
    assert pstats.Stats(str(report)).get_stats_profile().func_profiles  # the calls it saw


def _failing_report(tmp_path: Path, failures: int) -> Path:
    report = tmp_path / "TEST-fails.xml"
    cases = "".join(f'<testcase classname="pkg.Тест" name="test_{i}"><failure message="boom é {i}"/></testcase>'
                    for i in range(failures))
    report.write_text(f'<testsuite name="s">{cases}<testcase classname="pkg" name="ok"/></testsuite>',
                      encoding="utf-8")
    return report


def test_the_ingest_summary_into_a_pipe_is_plain_text_without_rich(home: Path, tmp_path: Path) -> None:
    # A CI log is a pipe: the summary is written line by line, whole and without styles, and Rich, which
    # only a terminal needs, is not imported for it.
    report = _failing_report(tmp_path, 22)
    code = ("import sys\nfrom testledger.cli.main import run\n"
            "sys.argv = ['testledger', 'ingest', sys.argv[1], '-p', 'unit']\n"
            "try:\n    run()\nexcept SystemExit as exc:\n"
            "    sys.stdout.flush()\n"
            "    sys.stderr.write(f'exit {exc.code} rich imported: {\"rich\" in sys.modules}\\n')\n")
    done = _python_args(code, str(report))
    lines = done.stdout.splitlines()
    assert lines[1] == "1 file, 23 tests: 1 passed, 22 failed, 0 errors, 0 skipped", done.stderr
    assert lines[2] == "  ✗ pkg.Тест::test_0: boom é 0" and len(lines) == 2 + 20 + 1
    assert lines[-1] == f"  … and 2 more; `testledger runs show {lines[0].split()[0]}` lists all"
    assert lines[0].endswith("  FAILED") and "[red]" not in done.stdout
    assert done.stderr.endswith("exit 1 rich imported: False\n"), done.stderr


def test_output_the_stream_cannot_encode_is_escaped_not_a_traceback(home: Path, tmp_path: Path) -> None:
    report = _failing_report(tmp_path, 1)
    done = subprocess.run([sys.executable, "-m", "testledger", "ingest", str(report), "-p", "unit"],
                          env={**os.environ, "PYTHONIOENCODING": "ascii"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert r"  \u2717 pkg.\u0422\u0435\u0441\u0442::test_0: boom \xe9 0" in done.stdout.splitlines()


#: `testledger ARGS...` as the console script starts it, saying at its exit whether the cyclic garbage
#: collector is on and whether the start's objects were frozen out of it (`cli/startup.py`).
_COLLECTOR = (
    "import atexit, gc, sys\n"
    "atexit.register(lambda: sys.stderr.write(\n"
    "    f'collector on: {gc.isenabled()}, start frozen: {gc.get_freeze_count() > 0}\\n'))\n"
    "sys.argv = ['testledger', *sys.argv[1:]]\n"
    "from testledger.__main__ import main\n"
    "main()\n"
)


def test_a_command_starts_without_the_collector_and_collects_once_its_work_begins(
    home: Path, tmp_path: Path
) -> None:
    """The start (imports) runs without the collector; a command that opens its store, such as a run
    of any length, does its work with it on, over its own objects only."""
    pipeline = tmp_path / "one.yaml"
    pipeline.write_text("key: one\ncases:\n  - {key: a, command: 'true'}\n")
    for args in (("runs", "list"), ("run", str(pipeline))):
        done = _python_args(_COLLECTOR, *args)
        assert done.returncode == 0, done.stderr
        assert "collector on: True, start frozen: True" in done.stderr, done.stderr
    shown = _python_args(_COLLECTOR, "--help")  # over before any work: the collector was never needed
    assert shown.returncode == 0 and "collector on: False, start frozen: False" in shown.stderr, shown.stderr


def test_the_collector_is_resumed_once_and_only_in_the_process_that_paused_it() -> None:
    later = _python("import gc\nfrom testledger.cli import startup\nstartup.pause(); startup.resume()\n"
                    "gc.disable()  # as `ingest` pauses it for its own work\nstartup.resume(); print(gc.isenabled())")
    assert later.stdout.strip() == "False", later.stderr
    # A process that did not pause it (a test, a server, the pytest plugin): nothing changes, nothing is frozen.
    other = _python("import gc\nfrom testledger.cli import startup\nstartup.resume()\n"
                    "print(gc.isenabled(), gc.get_freeze_count())")
    assert other.stdout.strip() == "True 0", other.stderr
