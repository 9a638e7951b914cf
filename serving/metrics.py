"""Request metrics with a bounded label set, served at ``/metrics`` to the operator role.

BentoML's own traffic metrics label each request with its raw path, so any
client can grow ``/metrics`` without bound by asking for random paths; they are
switched off (``metrics={"enabled": False}`` on the service) and replaced by
these, labelled with the route *template* (every path no route declares shares
the label ``unmatched``), the method (four values) and the status code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from serving.auth import RouteTable

__all__ = ["RouteMetrics", "render_metrics", "METRICS_CONTENT_TYPE", "METHODS"]

METHODS = ("GET", "POST", "HEAD")
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_INSTRUMENTS: dict[str, Any] = {}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _instruments() -> dict[str, Any]:
    # created once per process: prometheus_client refuses a second metric of a name
    if not _INSTRUMENTS:
        import prometheus_client

        labels = ["route", "method", "status"]
        _INSTRUMENTS["requests"] = prometheus_client.Counter(
            "harmcast_http_requests", "HTTP requests by route template", labels
        )
        _INSTRUMENTS["duration"] = prometheus_client.Histogram(
            "harmcast_http_request_duration_seconds",
            "HTTP request duration by route template",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
        )
    return _INSTRUMENTS


def render_metrics() -> bytes:
    """Return the exposition text of every worker (multiprocess mode) or of this process."""
    import prometheus_client

    _instruments()
    if os.environ.get(_MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return prometheus_client.generate_latest(registry)
    return prometheus_client.generate_latest()


class RouteMetrics:
    """ASGI middleware counting requests by route template, method and status.

    Parameters
    ----------
    app : the wrapped ASGI app.
    table : the service's declared routes (``serving.auth.RouteTable``).
    """

    def __init__(self, app: Any, *, table: RouteTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and count it under its route template."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.table.template(scope.get("path", ""))
        method = scope.get("method", "GET")
        method = method if method in METHODS else "OTHER"
        status = 500
        start = time.perf_counter()

        async def record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            instruments = _instruments()
            instruments["requests"].labels(route, method, str(status)).inc()
            instruments["duration"].labels(route).observe(time.perf_counter() - start)
