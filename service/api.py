"""`ForecastAPI`: LitServe's hooks for batched forecasting of many series per request.

No `from __future__ import annotations` here: LitServe reads the request model from the live
type hint of `decode_request`'s `request` parameter, which must be the class, not a string.
"""

import gc
import hashlib
import hmac
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
import orjson
import torch
from fastapi import HTTPException, Request, Response

from stackcast.models import ModelConfig
from stackcast.models.contract import min_history, model_inputs
from stackcast.service.loader import ModelSource, Registry, ServedModel, VersionInfo
from stackcast.service.logs import configure_logging
from stackcast.service.loop import ForecastLoop
from stackcast.service.metrics import worker_metrics
from stackcast.service.reload import AliasWatcher
from stackcast.service.retry import retry_while_unreachable
from stackcast.service.schema import ForecastRequest, ForecastResponse, RequestLimits
from stackcast.service.settings import ServeSettings

OPEN_PATHS = frozenset({"/health"})  # container health checks carry no key


def _series_in(request: ForecastRequest) -> int:
    return len(request.series)


@dataclass(frozen=True)
class Batch:
    """Requests merged for one forward pass, pinned to one model version."""

    served: ServedModel
    requests: list[ForecastRequest]
    windows: torch.Tensor  # (total series, input_size) on the model's device


@dataclass(frozen=True)
class Answer:
    """One request's forecasts and the version that produced them."""

    info: VersionInfo
    ids: list[str | None]
    means: list[np.ndarray]  # one (horizon,) float32 row per series


class ForecastAPI(ls.LitAPI):  # type: ignore[misc]
    """Each inference worker loads the registered version and serves batches of requests.

    Requests are validated by `ForecastRequest` in the HTTP process; here every series of every
    request in a batch goes through one forward pass and each request gets its own rows back.
    """

    def __init__(self, settings: ServeSettings, limits: RequestLimits, state_dir: Path) -> None:
        super().__init__(
            max_batch_size=settings.max_batch_size,
            batch_timeout=settings.batch_timeout,
            loop=ForecastLoop(_series_in, settings.max_batch_series),
        )
        self.settings = settings
        self.limits = limits
        self.state_dir = state_dir

    # --- worker side -------------------------------------------------------------------------

    def setup(self, device: str) -> None:
        """Load the version the URI points to onto `device`, warm it, start the alias watcher.

        A tracking server that does not answer is waited for (`settings.startup_timeout`): a
        worker restarted during an outage serves again once the registry is back.
        """
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process orchestrates shutdown
        configure_logging()
        self.target_device = torch.device(device)
        if self.target_device.type == "cpu":
            torch.set_num_threads(self._cpu_threads())
        source = ModelSource.parse(self.settings.model_uri)
        self.registry = Registry(self.settings.tracking_uri, source)
        self.metrics = worker_metrics()
        self._publish(
            retry_while_unreachable(
                lambda: self._load(self.registry.current()),
                self.settings.tracking_uri,
                self.settings.startup_timeout,
            )
        )
        self.watcher: AliasWatcher | None = None
        if source.follows_alias and self.settings.reload_interval > 0:
            self.watcher = AliasWatcher(
                self.registry,
                self.settings.reload_interval,
                self.served.info.version,
                load=self._load,
                swap=self._swap,
                incompatible=self.incompatible,
            )
            self.watcher.start()
        gc.freeze()  # the loaded libraries and model never need scanning again (see serve.py)

    def _cpu_threads(self) -> int:
        # The HTTP processes need CPU too: more torch threads than cores left them only makes
        # OpenMP threads spin against each other (measured: 0.9 cores -> 0.36 at the same load).
        if self.settings.torch_threads is not None:
            return self.settings.torch_threads
        return max(1, (os.cpu_count() or 2) // 2 // self.settings.workers_per_device)

    def _load(self, info: VersionInfo) -> ServedModel:
        served = self.registry.load(info, self.target_device)
        warm = torch.zeros(self.settings.max_batch_series, served.network.config.input_size)
        with torch.inference_mode():  # first-call allocations happen before any request
            served.network(warm.to(self.target_device))
        return served

    def _swap(self, served: ServedModel) -> None:
        self._publish(served)
        self.metrics.swaps.inc()

    def _publish(self, served: ServedModel) -> None:
        self.served = served  # one reference assignment: batches pin whichever they saw
        self.metrics.version.set(float(served.info.version))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "pid": os.getpid(),
            "device": str(self.target_device),
            "version": served.info.version,
            "run_id": served.info.run_id,
            "tags": served.info.tags,
            "config": served.network.config.model_dump(),
            "data": served.data.model_dump() if served.data is not None else None,
        }
        path = self.state_dir / f"worker-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)  # readers never see half a file

    def incompatible(self, config: ModelConfig) -> str | None:
        """Why a new version can't answer the requests this server accepts, or None."""
        if config.horizon < self.limits.max_horizon:
            return f"its horizon {config.horizon} < the served {self.limits.max_horizon}"
        if min_history(config) > self.limits.min_history:
            return f"it needs {min_history(config)} points, requests may carry fewer"
        return None

    # --- LitServe hooks ----------------------------------------------------------------------

    def decode_request(self, request: ForecastRequest, **kwargs: Any) -> ForecastRequest:
        """Already validated by pydantic in the HTTP process; nothing here can fail."""
        return request

    def batch(self, inputs: list[ForecastRequest], **kwargs: Any) -> Batch:
        """All series of all requests as one (total series, input_size) tensor."""
        served = self.served  # the version this whole batch runs on
        config = served.network.config
        histories = [s.history for request in inputs for s in request.series]
        windows = model_inputs(histories, config)  # the one window policy (models/window.py)
        tensor = torch.from_numpy(windows).to(self.target_device, non_blocking=True)
        return Batch(served, inputs, tensor)

    def predict(self, batch: Batch, **kwargs: Any) -> list[Answer]:
        """One forward pass; rows are handed back to their requests in order."""
        with torch.inference_mode():
            forecast = batch.served.network(batch.windows).float().cpu().numpy()  # (N, H)
        self.metrics.batch_requests.observe(len(batch.requests))
        self.metrics.batch_series.observe(forecast.shape[0])
        answers, row = [], 0
        for request in batch.requests:
            rows = forecast[row : row + len(request.series)]
            row += len(request.series)
            answers.append(self._answer(batch.served.info, request, rows))
        return answers

    @staticmethod
    def _answer(info: VersionInfo, request: ForecastRequest, rows: np.ndarray) -> Answer:
        means = [rows[i, : s.horizon or rows.shape[1]] for i, s in enumerate(request.series)]
        return Answer(info, [s.id for s in request.series], means)

    def unbatch(self, output: list[Answer], **kwargs: Any) -> list[Answer]:
        """`predict` already returns one answer per request."""
        return output

    def encode_response(self, output: Answer, **kwargs: Any) -> ForecastResponse:
        """The JSON body: the answering version and one forecast per series, in order.

        Rendered to bytes here, in the inference worker, with orjson: it writes the float32
        rows directly, each value in the shortest text that reads back as the same float32
        (a one-series body: 578 bytes instead of 1,043 with float64 reprs, nothing lost, and
        under the 1,000 bytes at which LitServe's GZip middleware starts compressing). The
        HTTP server passes the `Response` through untouched, instead of FastAPI re-encoding
        the body (`jsonable_encoder` + `json.dumps`: ~150 us for one series, against ~2 us
        for orjson). The annotation is what FastAPI publishes in the OpenAPI schema.
        """
        info = output.info
        body = {
            "model": {"name": info.name, "version": info.version, "run_id": info.run_id},
            "forecasts": [
                {"id": i, "mean": m} for i, m in zip(output.ids, output.means, strict=True)
            ],
        }
        rendered = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(rendered, media_type="application/json")  # type: ignore[return-value]

    # --- HTTP side ---------------------------------------------------------------------------

    async def authorize(self, request: Request) -> None:
        """LitServe's auth hook: the X-API-Key header, when a key is configured.

        Compared in constant time, and as SHA-256 digests so that the time does not depend on
        the key's length either. Neither the key nor what was sent is ever logged or echoed.
        `async` so FastAPI runs it on the event loop rather than hopping to a thread per request.
        """
        key = self.settings.api_key
        if key is None or request.url.path in OPEN_PATHS:
            return
        given = hashlib.sha256(request.headers.get("x-api-key", "").encode()).digest()
        expected = hashlib.sha256(key.get_secret_value().encode()).digest()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, "missing or wrong X-API-Key header")
