"""Assemble the LitServer: the ForecastAPI, limits, metrics, `/`, `/info`, `/metrics` and docs."""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Any

import litserve as ls
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST

from stackcast.models.contract import METRIC_TAG, METRIC_VALUE_TAG, min_history
from stackcast.service.api import OPEN_PATHS, ForecastAPI
from stackcast.service.docs import REDOC_PATH, serve_docs
from stackcast.service.errors import validation_error_handler
from stackcast.service.inflight import InFlight
from stackcast.service.landing import Link, landing_page
from stackcast.service.loader import ModelSource, Registry
from stackcast.service.metrics import RequestMetricsMiddleware, enable_multiprocess, render
from stackcast.service.openapi import TITLE, document
from stackcast.service.plain_text import PlainTextDefault
from stackcast.service.request_queue import RequestPipes
from stackcast.service.retry import retry_while_unreachable
from stackcast.service.schema import RequestLimits, set_request_limits
from stackcast.service.settings import ServeSettings
from stackcast.service.supervisor import WorkerSupervisor
from stackcast.service.transport import PipeTransport

LITSERVE_INFO_PATH = "/litserve/info"  # LitServe's own info page; ours is /info


class WorkerStartError(RuntimeError):
    """The inference worker could not set up (load the model); the server does not start."""


class ForecastServer(ls.LitServer):  # type: ignore[misc]
    """LitServer with LitServe 0.2.19's slow hand-offs between processes replaced (BENCHMARKS.md).

    Requests: LitServe hands them to the inference workers through `Manager().Queue()`, so every
    put is a blocking round trip to the manager process, made on the HTTP server's event loop,
    and every poll of the batch collector is another. `RequestPipes` writes each request from
    the event loop straight into a pipe the workers read. Responses come back over
    `PipeTransport`, read on the HTTP server's event loop. (LitServe's `fast_queue=True` is
    meant to send them over ZeroMQ, but 0.2.19 passes it to `TransportConfig` under a wrong
    field name, so they went through manager queues too.)

    A dead inference worker is restarted (`restart_workers=True`) by `WorkerSupervisor`; the
    HTTP servers answer the requests it had taken (see `service.inflight`).
    """

    def __init__(self, api: ForecastAPI, runtime_dir: Path, **kwargs: Any) -> None:
        super().__init__(api, restart_workers=True, **kwargs)
        self.forecast_api = api
        self.lock_dir = runtime_dir / "locks"
        self.supervisor: WorkerSupervisor | None = None

    def _init_manager(self, num_api_servers: int) -> Any:
        manager = super()._init_manager(num_api_servers)
        # One record per HTTP server process: each forks with its own copy, which its request
        # pipe and its response transport share.
        in_flight = InFlight(self.forecast_api.request_timeout)
        for path in list(self.litapi_request_queues):
            self.litapi_request_queues[path] = RequestPipes.create(
                num_api_servers, lock_dir=self.lock_dir, in_flight=in_flight
            )
        self._transport = PipeTransport.create(num_api_servers, in_flight=in_flight)
        return manager

    def verify_worker_status(self) -> None:
        """Wait for a ready worker; a worker that failed its setup stops the server."""
        try:
            super().verify_worker_status()
        except RuntimeError:
            raise WorkerStartError(
                "the inference worker failed to start (its error is logged above)"
            ) from None

    def _start_worker_monitoring(self, manager: Any, uvicorn_workers: Any) -> None:
        self.supervisor = WorkerSupervisor(self, self.forecast_api.state_dir)
        self.supervisor.start()

    def _perform_graceful_shutdown(
        self, manager: Any, uvicorn_workers: Any, shutdown_reason: str = "normal"
    ) -> None:
        if self.supervisor is not None:  # no worker is relaunched while they are terminated
            self.supervisor.stop()
        super()._perform_graceful_shutdown(manager, uvicorn_workers, shutdown_reason)


def build_server(settings: ServeSettings, runtime_dir: Path) -> ls.LitServer:
    """A ready-to-run LitServer for `settings`; process state lives in `runtime_dir`.

    The served version's contract is read from the registry here, in the main process, so an
    unknown model or alias fails at start, and request limits are fixed before HTTP processes
    fork. An unreachable tracking server is waited for, up to `settings.startup_timeout`.
    """
    source = ModelSource.parse(settings.model_uri)
    registry = Registry(settings.tracking_uri, source)
    config = retry_while_unreachable(
        lambda: registry.config(registry.current()),
        settings.tracking_uri,
        settings.startup_timeout,
    )
    limits = RequestLimits(
        input_size=config.input_size,
        max_horizon=config.horizon,
        min_history=min_history(config),
        max_series=settings.max_series_per_request,
        max_history_length=settings.max_history_length,
    )
    set_request_limits(limits)
    enable_multiprocess(runtime_dir / "metrics")
    api = ForecastAPI(settings, limits, runtime_dir / "workers")
    server = ForecastServer(
        api,
        runtime_dir,
        accelerator=settings.accelerator,
        workers_per_device=settings.workers_per_device,
        timeout=settings.request_timeout,
        info_path=LITSERVE_INFO_PATH,
        middlewares=[
            (RequestMetricsMiddleware, {"max_body_bytes": settings.max_payload_bytes}),
            PlainTextDefault,
        ],
    )
    server.app.add_exception_handler(RequestValidationError, validation_error_handler)
    _add_routes(server, api, source)
    serve_docs(server.app)
    document(server.app, api.authorize if settings.api_key else None, OPEN_PATHS)
    return server


def _add_routes(server: ls.LitServer, api: ForecastAPI, source: ModelSource) -> None:
    def info() -> dict[str, Any]:
        """The served model version and the server's batching settings."""
        return describe(api, source, server.devices)

    def metrics() -> Response:
        """Prometheus text format, summed over all server processes."""
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    keyed = api.settings.api_key is not None
    links = [
        Link("/docs", f"interactive API docs (Swagger UI; ReDoc at {REDOC_PATH})"),
        Link("/health", "`ok` once the model is loaded"),
        Link("/info", "the served model version and the server's settings", needs_key=keyed),
        Link("/metrics", "Prometheus metrics"),
        Link("/openapi.json", "the OpenAPI schema"),
    ]

    def index(request: Request) -> HTMLResponse:
        """What this server is, which model it serves, and links to the other routes."""
        model = None if keyed else api.settings.model_uri
        held = sorted({w["version"] for w in describe(api, source, server.devices)["workers"]})
        return landing_page(request, TITLE, model, held, links)

    # LitServe's own `/` ("litserve running", behind the key) gives way to the landing page.
    routes = server.app.router.routes
    routes[:] = [r for r in routes if not (isinstance(r, APIRoute) and r.path == "/")]
    server.app.add_api_route("/", index, methods=["GET"], response_class=HTMLResponse)
    server.app.add_api_route("/info", info, methods=["GET"], dependencies=[Depends(api.authorize)])
    server.app.add_api_route("/metrics", metrics, methods=["GET"])


def describe(api: ForecastAPI, source: ModelSource, devices: list[Any]) -> dict[str, Any]:
    """What `/info` answers: read from the state each inference worker publishes."""
    workers = []
    for path in sorted(api.state_dir.glob("worker-*.json")):
        with suppress(FileNotFoundError):  # a dead worker's state, dropped meanwhile
            workers.append(json.loads(path.read_text()))
    settings = api.settings
    body: dict[str, Any] = {
        "model": None,
        "workers": [{k: w[k] for k in ("pid", "device", "version")} for w in workers],
        "batching": {
            "max_batch_size": settings.max_batch_size,
            "max_batch_series": settings.max_batch_series,
            "batch_timeout": settings.batch_timeout,
            "workers_per_device": settings.workers_per_device,
            "devices": [str(d) for d in devices],
        },
        "limits": {
            "max_series_per_request": api.limits.max_series,
            "min_history": api.limits.min_history,
            "max_history_length": api.limits.max_history_length,
            "max_horizon": api.limits.max_horizon,
        },
    }
    if workers:
        newest = max(workers, key=lambda w: int(w["version"]))
        config, tags = newest["config"], newest["tags"]
        body["model"] = {
            "name": source.name,
            "version": newest["version"],
            "alias": source.alias,
            "run_id": newest["run_id"],
            "cell": config["cell"],
            "num_layers": config["num_layers"],
            "hidden_size": config["hidden_size"],
            "input_size": config["input_size"],
            "horizon": config["horizon"],
            "data": newest.get("data"),  # DataContract: source, frequency, seasonality
            METRIC_TAG: tags.get(METRIC_TAG),
            METRIC_VALUE_TAG: _number(tags.get(METRIC_VALUE_TAG)),
            "device": newest["device"],
        }
    return body


def _number(text: str | None) -> float | None:
    return float(text) if text is not None else None
