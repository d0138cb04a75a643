"""A tiny HTTP service for the example pipeline: `start` runs it in the background, `stop` ends it.

The service answers `GET /healthz` and `GET /api/status`, checks a bearer token on `/api/me`, and
exits on its own after `--lifetime` seconds, so it never outlives the example even if `stop` is
never run. testledger also ends every process a run started when the run finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    token = ""

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.reply(200, {"status": "ok"})
        elif self.path == "/api/status":
            self.reply(200, {"service": {"name": "example", "version": "1.2.0"}, "queue": [3, 1]})
        elif self.path == "/api/me":
            ok = self.headers.get("Authorization") == f"Bearer {self.token}"
            self.reply(200 if ok else 401, {"user": "demo"} if ok else {"error": "bad token"})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path == "/shutdown":
            self.reply(200, {"status": "stopping"})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
        else:
            self.reply(404, {"error": "not found"})

    def reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int, token: str, lifetime: float) -> None:
    Handler.token = token
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    timer = threading.Timer(lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever()


def url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(url(port, "/healthz"), timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(port: int, token_env: str, lifetime: float) -> int:
    if healthy(port):
        print(f"an example server already answers on port {port}; using it")
        return 0
    child = subprocess.Popen(
        # The token stays in the environment the child inherits: on a command line, `ps` would show it.
        [sys.executable, __file__, "serve", "--port", str(port), "--token-env", token_env, "--lifetime", str(lifetime)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if healthy(port):
            print(f"example server listening on {url(port, '')} (pid {child.pid})")
            return 0
        if child.poll() is not None:
            print(f"the example server exited at once: is port {port} in use? Try --param port=NNNN")
            return 1
        time.sleep(0.05)
    print("the example server did not answer within 5s")
    return 1


def stop(port: int) -> int:
    try:
        urllib.request.urlopen(urllib.request.Request(url(port, "/shutdown"), method="POST"), timeout=2).close()
    except (urllib.error.URLError, OSError):
        print("no example server to stop")
    else:
        print("example server stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "serve"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token-env", default="TL_PARAM_API_TOKEN",
                        help="Environment variable that holds the bearer token (testledger passes parameters so).")
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()
    if args.action == "serve":
        serve(args.port, os.environ.get(args.token_env, ""), args.lifetime)
        return 0
    return start(args.port, args.token_env, args.lifetime) if args.action == "start" else stop(args.port)


if __name__ == "__main__":
    sys.exit(main())
