"""`testledger serve` as a real uvicorn process on a free port, and the report the API and client tests seed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(home: Path, store_url: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "TESTLEDGER_HOME": str(home), "TESTLEDGER_DATABASE_URL": store_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "testledger", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    output = process.communicate()[0].decode(errors="replace")
    raise AssertionError(f"testledger serve did not start:\n{output}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


#: The report the API and client tests seed their store with: 3 tests, one failed, with stored output.
JUNIT = """<?xml version="1.0"?>
<testsuite name="unit" tests="3">
  <testcase classname="app.Login" name="ok" time="0.1"><system-out>logged in as alice</system-out></testcase>
  <testcase classname="app.Cart" name="adds" time="0.2">
    <failure message="expected 2, got 3" type="AssertionError">trace line</failure>
    <system-out>cart has 3 items</system-out><system-err>warning: slow</system-err>
  </testcase>
  <testcase classname="app.Pay" name="quiet" time="0.3"/>
</testsuite>
"""
