"""API benchmark: GET /api/v1/executions?limit=50 under wrk (50 connections, one server worker) beside a bare
Starlette route returning the same rows from the same SQLite store of 100,000 runs, in the same run."""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import (
    WORKSPACE,
    Config,
    SqliteBackend,
    create_pipelines,
    fill_runs,
    plan_runs,
    progress,
)
from common import machine_info, markdown_table

from testledger.db.engine import Store
from testledger.services.tokens import create_token

PATH = "/api/v1/executions?limit=50"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def build_store(home: Path, runs: int) -> tuple[Path, str]:
    """A SQLite store with `runs` runs over 200 pipelines, and a viewer token of their workspace."""
    db = home / "testledger.db"
    store = Store(f"sqlite:///{db}")
    cfg = Config(runs=runs, results=runs, pipelines=200, tests=200, chunk_runs=1000, ingest_sample=0, calls=0, seed=1)
    ws_id, pipeline_ids, _keys = create_pipelines(store, cfg.pipelines)
    fill_runs(SqliteBackend(), store, plan_runs(cfg, random.Random(1)), ws_id, pipeline_ids)
    with store.write() as session:
        token = create_token(session, workspace=WORKSPACE, role="viewer", name="bench", actor="bench").token
    store.dispose()
    return db, token


def start(command: list[str], env: dict[str, str], port: int, headers: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               cwd=Path(__file__).parent)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}{PATH}", headers=headers, timeout=5)
            if response.status_code == 200 and len(response.json()["items"]) == 50:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start: {process.communicate()[1].decode()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def wrk(port: int, headers: dict[str, str], seconds: int, connections: int) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 in ms, from wrk (2 threads) on loopback."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    # The latency distribution's own lines: "Latency ... 75.50%" above must not match "50%".
    p50, p99 = (re.search(rf"^\s+{q}%\s+(\S+)", out, re.MULTILINE)[1] for q in (50, 99))  # type: ignore[index]
    return rps, _ms(p50), _ms(p99)


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def bench_ingest(cases: int, rounds: int) -> list[list[str]]:
    """One JUnit file of `cases` cases: `testledger ingest` (a process of its own) against an upload to
    `testledger serve`, each into a fresh SQLite store, alternating; seconds of the best round."""
    from bench_ingest import make_specs, write_junit

    work = Path(tempfile.mkdtemp(prefix="bench-api-ingest-"))
    report = work / "junit.xml"
    write_junit(report, make_specs(cases, 7))
    times: dict[str, list[float]] = {"cli": [], "http": [], "client": []}
    for number in range(rounds):
        for how in times:
            home = work / f"{how}-{number}"
            home.mkdir()
            env = {**os.environ, "TESTLEDGER_HOME": str(home), "TESTLEDGER_DATABASE_URL": f"sqlite:///{home}/t.db"}
            for variable in ("TESTLEDGER_URL", "TESTLEDGER_TOKEN"):
                env.pop(variable, None)
            times[how].append(_ingest_cli(report, env) if how == "cli" else _ingest_http(report, env, home,
                                                                                      client=how == "client"))
            progress(f"ingest round {number + 1}: {how} {times[how][-1]:.1f} s")
    shutil.rmtree(work, ignore_errors=True)
    cli, http, client = min(times["cli"]), min(times["http"]), min(times["client"])
    return [[f"`testledger ingest` of {cases:,} cases (baseline)", f"{cli:.1f}", f"{cases / cli:,.0f}", "1.00"],
            ["`POST /api/v1/ingest` of the same file", f"{http:.1f}", f"{cases / http:,.0f}", f"{http / cli:.2f}"],
            ["`testledger ingest` with TESTLEDGER_URL (gzip-streamed upload, then the summary)", f"{client:.1f}",
             f"{cases / client:,.0f}", f"{client / cli:.2f}"]]


def _ingest_cli(report: Path, env: dict[str, str]) -> float:
    Store(env["TESTLEDGER_DATABASE_URL"]).dispose()  # both sides start from a migrated store
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "testledger", "ingest", str(report), "-p", "bench", "--no-fail"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _ingest_http(report: Path, env: dict[str, str], home: Path, *, client: bool = False) -> float:
    """An upload to a fresh `testledger serve`: a bare httpx POST, or (`client`) the CLI pointed at it."""
    store = Store(env["TESTLEDGER_DATABASE_URL"])
    with store.write() as session:
        token = create_token(session, workspace="WKS", role="runner", name="bench", actor="bench").token
    store.dispose()
    port = free_port()
    headers = {"Authorization": f"Bearer {token}"}
    process = subprocess.Popen([sys.executable, "-m", "testledger", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        started = time.perf_counter()
        if client:
            subprocess.run([sys.executable, "-m", "testledger", "ingest", str(report), "-p", "bench", "--no-fail"],
                           env={**env, "TESTLEDGER_URL": f"http://127.0.0.1:{port}", "TESTLEDGER_TOKEN": token},
                           check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - started
        with report.open("rb") as upload:
            response = httpx.post(f"http://127.0.0.1:{port}/api/v1/ingest", headers=headers, timeout=600,
                                  data={"pipeline_key": "bench"}, files={"files": (report.name, upload)})
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed
    finally:
        stop(process)


CPU_PROBE = """
import asyncio, os, sys, time
sys.path.insert(0, os.environ["BENCH_DIR"])
import bare_api
from testledger.api import create_app
ours = create_app()
headers = [(b"authorization", ("Bearer " + os.environ["BENCH_TOKEN"]).encode())]

async def call(app, extra):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/api/v1/executions", "raw_path": b"/api/v1/executions", "query_string": b"limit=50",
             "root_path": "", "headers": [(b"host", b"bench"), *extra], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "state": {}}
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        assert message["type"] != "http.response.start" or message["status"] == 200, message
    await app(scope, receive, send)

async def main():
    for app, extra in ((bare_api.app, []), (ours, headers)):
        for _ in range(20):
            await call(app, extra)
        started = time.process_time()
        for _ in range(int(os.environ["BENCH_N"])):
            await call(app, extra)
        print((time.process_time() - started) / int(os.environ["BENCH_N"]))

asyncio.run(main())
"""


def cpu_per_request(env: dict[str, str], token: str, before: str | None, rounds: int, n: int = 500) -> list[list[str]]:
    """CPU time per request of both apps called in process (no HTTP, no load generator): what a loaded
    machine's scheduler cannot blur. With `before`, the product's app from that source tree too."""
    trees = {"this tree": env} | ({"before": {**env, "PYTHONPATH": before}} if before else {})
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree_env in trees.items():
            out = subprocess.run([sys.executable, "-c", CPU_PROBE], capture_output=True, text=True, check=True,
                                 env={**tree_env, "BENCH_DIR": str(Path(__file__).parent), "BENCH_TOKEN": token,
                                      "BENCH_N": str(n)}).stdout.split()
            results[name].append((float(out[0]), float(out[1])))
    rows = []
    for name, pairs in results.items():
        bare, ours = min(b for b, _o in pairs), min(o for _b, o in pairs)
        rows.append([f"`testledger serve` app ({name})", f"{ours * 1000:.2f}", f"{bare * 1000:.2f}",
                     f"{bare / ours:.0%}"])
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds per server; the best is kept.")
    parser.add_argument("--ingest-cases", type=int, default=100_000, help="Cases of the ingest comparison; 0: skip.")
    parser.add_argument("--before", help="Also measure the app from this src/ tree, in process and under wrk.")
    args = parser.parse_args(argv)
    if args.ingest_cases:
        ingest_rows = bench_ingest(args.ingest_cases, args.rounds)
        print(markdown_table(["ingest", "seconds", "cases/s", "time vs baseline"], ingest_rows) + "\n")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    home = Path(tempfile.mkdtemp(prefix="bench-api-"))
    progress(f"filling {args.runs:,} runs into {home}")
    db, token = build_store(home, args.runs)
    env = {**os.environ, "TESTLEDGER_HOME": str(home), "TESTLEDGER_DATABASE_URL": f"sqlite:///{db}",
           "BENCH_DB": str(db), "BENCH_WORKSPACE": WORKSPACE}
    serve = [sys.executable, "-m", "testledger", "serve", "--workers", "1"]
    auth = {"Authorization": f"Bearer {token}"}
    servers: dict[str, tuple[list[str], dict[str, str], dict[str, str]]] = {
        "bare Starlette + sqlite3 (baseline)": (
            [sys.executable, "-m", "uvicorn", "bare_api:app", "--workers", "1", "--log-level", "warning",
             "--no-access-log"], {}, {}),
        "testledger serve (FastAPI, auth, response_model)": (serve, auth, {}),
    }
    if args.before:
        servers["testledger serve, before (--before tree)"] = (serve, auth, {"PYTHONPATH": args.before})
    cpu_rows = cpu_per_request(env, token, args.before, args.rounds)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in servers}
    for round_number in range(args.rounds):
        for name, (command, headers, extra_env) in servers.items():
            port = free_port()
            process = start([*command, "--host", "127.0.0.1", "--port", str(port)], {**env, **extra_env}, port,
                            headers)
            try:
                wrk(port, headers, 3, args.connections)  # warm-up
                results[name].append(wrk(port, headers, args.seconds, args.connections))
                progress(f"round {round_number + 1}: {name}: {results[name][-1][0]:,.0f} req/s")
            finally:
                stop(process)
    shutil.rmtree(home, ignore_errors=True)
    best = {name: max(runs) for name, runs in results.items()}
    baseline = best[next(iter(servers))][0]
    rows = [[name, f"{rps:,.0f}", f"{p50:.1f}", f"{p99:.1f}", f"{rps / baseline:.0%}"]
            for name, (rps, p50, p99) in best.items()]
    info = machine_info()
    print(f"Machine: {', '.join(f'{k} {v}' for k, v in info.items())}\n")
    print(f"`GET {PATH}` on a SQLite store of {args.runs:,} runs; wrk -t2 -c{args.connections} -d{args.seconds}s "
          f"on loopback, one server worker; best of {args.rounds} alternating rounds.\n")
    print(markdown_table(["server", "requests/s", "p50 ms", "p99 ms", "of baseline"], rows))
    names = list(servers)
    for name in names[1:]:
        ratios = [f"{api[0] / bare[0]:.0%}" for bare, api in zip(results[names[0]], results[name], strict=True)]
        print(f"\nRatio to the baseline in each round (same store, back to back), {name}: {', '.join(ratios)}")
    print("\nCPU per request, both apps called in process (best of rounds):\n")
    print(markdown_table(["app", "ms CPU / request", "bare route ms CPU", "bare / app"], cpu_rows))
    print(f"\nLoad average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
