"""Prometheus metrics summed across LitServe's HTTP and inference processes.

prometheus_client's multiprocess mode: each process writes its samples to files in one shared
directory (`PROMETHEUS_MULTIPROC_DIR`, inherited by forked HTTP servers and spawned inference
workers) and `/metrics` aggregates them, so counts are right whichever process served a request.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
PATHS = ("/predict", "/info", "/health", "/metrics")  # anything else is labelled "other"


def enable_multiprocess(directory: Path) -> None:
    """Share samples through `directory`.

    Metrics made before (by an earlier server in this process) are dropped: their values are
    written under the directory that was set when they were made.
    """
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    # prometheus_client picks its value store when imported; pick again now the env is set.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    http_metrics.cache_clear()
    worker_metrics.cache_clear()


@dataclass(frozen=True)
class HttpMetrics:
    """Recorded by the HTTP server processes."""

    requests: Counter
    errors: Counter
    latency: Histogram


@dataclass(frozen=True)
class WorkerMetrics:
    """Recorded by the inference worker processes."""

    batch_requests: Histogram
    batch_series: Histogram
    swaps: Counter
    version: Gauge


@lru_cache(maxsize=1)
def http_metrics() -> HttpMetrics:
    """This process's HTTP metrics, created on first use (after `enable_multiprocess`)."""
    return HttpMetrics(
        requests=Counter(
            "stackcast_http_requests",
            "HTTP requests answered, by path and status code.",
            ["path", "code"],
            registry=None,
        ),
        errors=Counter(
            "stackcast_http_errors",
            "HTTP requests answered with a 4xx or 5xx, by path and status code.",
            ["path", "code"],
            registry=None,
        ),
        latency=Histogram(
            "stackcast_http_request_duration_seconds",
            "Time from request received to response sent, by path.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        ),
    )


@lru_cache(maxsize=1)
def worker_metrics() -> WorkerMetrics:
    """This inference worker's metrics, created in `ForecastAPI.setup`."""
    return WorkerMetrics(
        batch_requests=Histogram(
            "stackcast_batch_requests",
            "Requests merged into one forward pass.",
            buckets=BATCH_BUCKETS,
            registry=None,
        ),
        batch_series=Histogram(
            "stackcast_batch_series",
            "Series (rows) in one forward pass.",
            buckets=BATCH_BUCKETS,
            registry=None,
        ),
        swaps=Counter(
            "stackcast_model_swaps",
            "Times an inference worker swapped in a newly promoted version.",
            registry=None,
        ),
        version=Gauge(
            "stackcast_model_version",
            "Registered model version each live inference worker serves.",
            multiprocess_mode="liveall",
            registry=None,
        ),
    )


def render() -> bytes:
    """The Prometheus text exposition of all processes' samples."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return bytes(generate_latest(registry))


def sample_total(exposition: str, sample: str, **labels: str) -> float:
    """Sum of the samples named `sample` that carry `labels`, in a Prometheus text exposition.

    For clients of `/metrics` (tests, benchmarks), e.g.
    `sample_total(text, "stackcast_http_requests_total", path="/predict", code="200")`.
    """
    return sum(
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    )


class RequestMetricsMiddleware:
    """ASGI middleware: count, time and size-limit every HTTP request.

    Oversized bodies get a 413 here, before anything reads them: by `Content-Length` when
    the client sends one, else as the streamed body crosses the limit.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 or pass the request on; record its path, status and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"] if scope["path"] in PATHS else "other"
        status = 500  # if the app dies before answering, that is what the client sees

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            if self._declared_size(scope) > self.max_body_bytes:
                await self._too_large(send_and_record)
            else:
                await self.app(scope, self._limited(receive), send_and_record)
        finally:
            metrics = http_metrics()
            metrics.requests.labels(path, str(status)).inc()
            if status >= 400:
                metrics.errors.labels(path, str(status)).inc()
            metrics.latency.labels(path).observe(time.perf_counter() - started)

    @staticmethod
    def _declared_size(scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                from fastapi import HTTPException  # FastAPI re-raises it as the response

                raise HTTPException(413, self._message())
            return message

        return receive_limited

    def _message(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes (STACKCAST_MAX_PAYLOAD_BYTES)"

    async def _too_large(self, send: Send) -> None:
        body = ('{"detail":"' + self._message() + '"}').encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
