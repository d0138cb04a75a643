"""Prometheus text metrics without a client library: requests by route and code, latency, ingest and run counts."""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters kept in this process (each uvicorn worker has its own, as with prometheus_client)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.cases_ingested = 0

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, code)] += 1
            buckets = self.latency.setdefault(route, [0] * (len(BUCKETS) + 1))
            buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum[route] += seconds

    def ingested(self, cases: int) -> None:
        with self._lock:
            self.cases_ingested += cases

    def render(self, runs_by_status: dict[tuple[str, str], int]) -> str:
        lines = ["# HELP testledger_http_requests_total HTTP requests by method, route and status code.",
                 "# TYPE testledger_http_requests_total counter"]
        with self._lock:
            for (method, route, code), count in sorted(self.requests.items()):
                lines.append(f'testledger_http_requests_total{{method="{method}",route="{_esc(route)}",'
                             f'code="{code}"}} {count}')
            lines += ["# HELP testledger_http_request_duration_seconds Time to answer a request, by route.",
                      "# TYPE testledger_http_request_duration_seconds histogram"]
            for route, counts in sorted(self.latency.items()):
                total = 0
                for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                    total += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f'testledger_http_request_duration_seconds_bucket{{route="{_esc(route)}",'
                                 f'le="{le}"}} {total}')
                lines.append(f'testledger_http_request_duration_seconds_sum{{route="{_esc(route)}"}} '
                             f"{self.latency_sum[route]:.6f}")
                lines.append(f'testledger_http_request_duration_seconds_count{{route="{_esc(route)}"}} {total}')
            lines += ["# HELP testledger_cases_ingested_total Case results ingested over HTTP by this process.",
                      "# TYPE testledger_cases_ingested_total counter",
                      f"testledger_cases_ingested_total {self.cases_ingested}"]
        lines += ["# HELP testledger_runs Runs in the store by lifecycle status and result.",
                  "# TYPE testledger_runs gauge"]
        for (status, result), count in sorted(runs_by_status.items()):
            lines.append(f'testledger_runs{{status="{status}",result="{result}"}} {count}')
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class MetricsMiddleware:
    """Times every HTTP request and counts it under its route template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def record(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], path, code, time.perf_counter() - started)
