"""`testledger run KEY` and `testledger logs` against a server: it runs the pipeline; this process watches."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from testledger.cli import context as ctx

if TYPE_CHECKING:
    from testledger.remote.client import Remote

#: How often a watched run is asked for its state.
POLL_SECONDS = 0.5
#: Most cases one poll reads to draw progress (`runs show` pages through more).
PROGRESS_CASES = 10_000


class ServerRun:
    """A run the server executes, seen as the local executor is by the progress display: `wait` polls it
    and reports newly finished cases, `cancel` asks the server to stop it."""

    def __init__(self, server: Remote, key: str, workspace: str, on_event: Any) -> None:
        self.server, self.key, self.workspace, self.on_event = server, key, workspace, on_event
        self.seen: set[int] = set()

    def wait(self, key: str, timeout: float) -> bool:
        from testledger.execute.executor import CaseFinished
        from testledger.lifecycle import TERMINAL

        execution = self.server.get_execution(workspace=self.workspace, key=key, case_limit=PROGRESS_CASES)
        for case in execution.cases or []:
            if case.parent_index is not None or case.index in self.seen:
                continue
            self.seen.add(case.index)
            self.on_event(CaseFinished(
                index=case.index, key=case.case_key, name=case.name, status=case.status.lower(),
                duration_ms=case.duration_ms, flaky=case.flaky, attempts=case.attempts, error=case.error))
        if execution.status.lower() in TERMINAL:
            return True
        time.sleep(timeout)
        return False

    def cancel(self, key: str) -> None:
        self.server.request_cancel(workspace=self.workspace, key=key)


def run_on_server(
    server: Remote, target: str, *, workspace: str | None, env: str | None, overrides: dict[str, str],
    parallel: int | None, as_json: bool, progress: Any, wait: Any,
) -> NoReturn:
    """Start the stored pipeline `target` on the server, draw its progress as a local run's, print the
    run as `runs show` does and exit with the run's code."""
    from testledger.cli.render import count_of, execution_outline, print_outline
    from testledger.cli.runs import exit_code
    from testledger.errors import Invalid
    from testledger.provenance import from_environment

    if target.endswith((".yaml", ".yml", ".json")) or "/" in target:
        raise Invalid(f"with TESTLEDGER_URL set, `run` starts a pipeline stored on the server ({server.url}): "
                      f"`testledger pipelines apply {target}`, then `testledger run KEY`")
    if parallel is not None:
        raise Invalid("--parallel is not available with TESTLEDGER_URL set: the server runs the pipeline's own")
    ws = ctx.resolve_workspace(workspace)
    pipeline = server.get_pipeline(workspace=ws, key=target)
    started = server.start_run(workspace=ws, pipeline_key=target, environment=env, parameters=overrides,
                               provenance=from_environment())
    key, total = started.execution_id, len(pipeline.cases or [])
    live = not as_json and sys.stdout.isatty()
    shown = progress(key, total, live=live, stream=sys.stderr if as_json else sys.stdout)
    if not as_json and not live:
        sys.stdout.write(f"Run {key}: {count_of(total, 'case')}\n")
    wait(ServerRun(server, key, started.workspace, shown.event), key, shown if live else None)
    execution = server.show_execution(workspace=started.workspace, key=key)
    if as_json:
        ctx.print_json(execution)
    else:
        print_outline(execution_outline(execution))
    raise typer.Exit(exit_code(execution.status, execution.result))


def print_server_log(server: Remote, key: str, index: int, *, follow: bool) -> None:
    """Print a case's log as the server serves it, in bounded pieces; with `follow`, until the run ends."""
    import codecs

    from testledger.lifecycle import TERMINAL

    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    offset = 0
    while True:
        running = follow and server.get_execution(
            workspace=ctx.run_workspace(None, key), key=key, with_cases=False).status.lower() not in TERMINAL
        while True:  # the server answers at most 16 MiB per request: read on until nothing is left
            read = 0
            with server.read_log(key=key, index=index, start=offset) as response:
                for chunk in response.iter_bytes(256 * 1024):
                    sys.stdout.write(decoder.decode(chunk))
                    read += len(chunk)
            offset += read
            if not read:
                break
        sys.stdout.flush()
        if not running:
            sys.stdout.write(decoder.decode(b"", final=True))
            return
        time.sleep(0.3)
