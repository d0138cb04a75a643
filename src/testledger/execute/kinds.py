"""The process case kinds: a shell `command`, and a `pytest` target whose JUnit report becomes sub-results."""

from __future__ import annotations

import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testledger.execute.attempt import AttemptResult, CaseContext, seconds_text
from testledger.execute.process import ProcessOutcome, run_process
from testledger.failures import categorise, exit_category

#: Exit codes of a shell that could not run the command at all: not executable, not found.
_CANNOT_RUN = {126: "not executable", 127: "command not found"}
#: pytest's exit codes (pytest.ExitCode) other than 0 and 1.
_PYTEST_EXIT = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}


def _workdir(ctx: CaseContext, spec: dict[str, Any]) -> Path:
    return ctx.workdir / spec["workdir"] if spec.get("workdir") else ctx.workdir


def _env(ctx: CaseContext, spec: dict[str, Any]) -> dict[str, str]:
    return {**ctx.env, **spec["env"]} if spec.get("env") else ctx.env


def _start(ctx: CaseContext, argv: list[str], spec: dict[str, Any]) -> tuple[datetime, ProcessOutcome]:
    started = datetime.now(UTC)
    outcome = run_process(
        argv, cwd=_workdir(ctx, spec), env=_env(ctx, spec), deadline=ctx.deadline, output=ctx.output,
        groups=ctx.groups, stop=ctx.stop, grace=ctx.grace,
    )
    return started, outcome


def _abnormal(outcome: ProcessOutcome, result: AttemptResult, ctx: CaseContext) -> bool:
    """Fill `result` for a process that did not exit on its own; True when it was handled."""
    if outcome.spawn_error:
        result.status, result.message = "error", f"cannot start the process: {outcome.spawn_error}"
        result.decide_category(infrastructure=True)
    elif outcome.stopped:
        result.status, result.stopped, result.message = "skipped", True, "stopped before it finished"
    elif outcome.timed_out:
        result.status, result.error_type = "failed", "TimeoutError"
        result.message = f"timed out after {seconds_text(ctx.limit_s)}; its process group was killed"
        ctx.output.note(f"[testledger] {result.message}")
        result.decide_category(timed_out=True)
    elif outcome.signal is not None:  # it ran and crashed: the program's own failure
        result.status, result.message = "failed", f"killed by signal {_signal_name(outcome.signal)}"
        result.failure_category = exit_category(ctx.output.tail_text(4096))
    else:
        return False
    return True


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def run_command(ctx: CaseContext, spec: dict[str, Any]) -> AttemptResult:
    started, outcome = _start(ctx, ["/bin/sh", "-c", spec["run"]], spec)
    result = AttemptResult(status="passed", started_at=started, duration_ms=outcome.duration_ms)
    if _abnormal(outcome, result, ctx):
        return result
    code, expected = outcome.exit_code, spec.get("exit_code", 0)
    if code == expected:
        return result
    if code in _CANNOT_RUN and expected not in _CANNOT_RUN:  # it never started: no verdict
        result.status = "error"
        result.message = f"exit code {code} ({_CANNOT_RUN[code]}; expected {expected})"
        result.decide_category(infrastructure=True)
    else:  # it ran and said no, as every CI reads an exit code
        result.status = "failed"
        result.message = f"exit code {code} (expected {expected})"
        result.failure_category = exit_category(ctx.output.tail_text(4096))
    return result


def run_pytest(ctx: CaseContext, spec: dict[str, Any]) -> AttemptResult:
    report = Path(ctx.attachments) / "junit.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    python = str(_workdir(ctx, spec) / spec["python"]) if spec.get("python") else sys.executable
    argv = [python, "-m", "pytest", spec["target"], *spec.get("args", []), f"--junitxml={report}"]
    started, outcome = _start(ctx, argv, spec)
    result = AttemptResult(status="passed", started_at=started, duration_ms=outcome.duration_ms)
    if report.exists():
        result.sub_cases = _read_junit(report, ctx)
        _mask_file(report, ctx)
    if _abnormal(outcome, result, ctx) or outcome.exit_code == 0:
        return result
    code = outcome.exit_code
    bad = [c for c in result.sub_cases if c.status in ("failed", "error")]
    if code in (1, 2) and bad:  # tests failed (2: some could not even be collected)
        first = bad[0]
        result.status = "failed"
        result.error_type = first.error_type
        result.message = f"{len(bad)} of {len(result.sub_cases)} tests failed; first: {first.name}: " + (
            (first.message or "").strip().splitlines()[0] if (first.message or "").strip() else first.status
        )
        result.failure_category = categorise(
            "failed", message=first.message, error_type=first.error_type, stack_trace=first.stack_trace
        )
        return result
    result.status = "error"
    tail = ctx.output.tail_text(4096)
    if "No module named pytest" in tail:
        result.message = f"pytest is not installed for {argv[0]} (pip install pytest there, or set `python:`)"
        result.failure_category = "infrastructure"
        return result
    result.message = f"pytest exit code {code} ({_PYTEST_EXIT.get(code or 0, 'unexpected')})"
    result.decide_category(evidence=tail)
    return result


def _mask_file(path: Path, ctx: CaseContext) -> None:
    """Mask secrets in a file kept as an attachment (pytest's report holds captured output)."""
    if not ctx.masker:
        return
    masked = path.with_name(path.name + ".masking")
    stream = ctx.masker.stream()
    with path.open("rb") as source, masked.open("wb") as target:
        while chunk := source.read(1 << 20):
            target.write(stream.feed(chunk))
        target.write(stream.close())
    masked.replace(path)


def _read_junit(report: Path, ctx: CaseContext) -> list[Any]:
    """pytest's JUnit report through the project's JUnit parser; an unreadable report is noted in the log."""
    from testledger.ingest.model import ReportParseError
    from testledger.ingest.parsers import parse_report

    try:
        with report.open("rb") as stream:
            _info, cases = parse_report(stream, name=report.name)
    except (ReportParseError, OSError) as exc:
        ctx.output.note(f"[testledger] cannot read pytest's JUnit report: {exc}")
        return []
    return cases
