"""Start the real service for tests: in-process (LitServe's test pattern) or as a subprocess."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from litserve.utils import wrap_litserve_start

from stackcast.service.app import build_server
from stackcast.service.metrics import MULTIPROC_ENV
from stackcast.service.settings import load_settings
from tests.conftest import ServedStore

API_KEY = "test-key-0123456789abcdef"


@contextmanager
def in_process(store: ServedStore, runtime: Path, **overrides: Any) -> Iterator[TestClient]:
    """The LitServer app behind a TestClient, with real spawned inference workers."""
    saved = os.environ.get(MULTIPROC_ENV)
    settings = load_settings(
        model_uri=store.uri, tracking_uri=store.tracking_uri, reload_interval=0, **overrides
    )
    server = build_server(settings, runtime)
    try:
        with wrap_litserve_start(server) as started, TestClient(started.app) as client:
            yield client
    finally:
        if saved is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = saved


def wait_healthy(client: TestClient | httpx.Client, timeout: float = 120) -> list[int]:
    """Poll /health until 200; returns every status seen on the way."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(client.get("/health").status_code)
        if seen[-1] == 200:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"/health never answered 200: {seen[-5:]}")


def serve_command() -> list[str]:
    """`stackcast serve` from this interpreter's environment."""
    return [sys.executable, "-m", "stackcast", "serve"]


def serve_env(store: ServedStore, port: int, **settings: str) -> dict[str, str]:
    """The environment of a `stackcast serve` subprocess on `store` (no inherited MLflow vars)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STACKCAST_"))}
    env.pop(MULTIPROC_ENV, None)
    env.update(
        STACKCAST_MODEL_URI=store.uri,
        STACKCAST_TRACKING_URI=store.tracking_uri,
        STACKCAST_PORT=str(port),
        STACKCAST_HOST="127.0.0.1",
    )
    env.update({f"STACKCAST_{k.upper()}": v for k, v in settings.items()})
    return env
