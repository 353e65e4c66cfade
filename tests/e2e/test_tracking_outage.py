"""`stackcast serve` and a tracking server that is down: at start, and while serving."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from stackcast.models import StackedRNNForecaster
from stackcast.user_errors import ExitCode
from tests.conftest import ServedStore
from tests.e2e.servers import free_port, mlflow_server_command, running_server
from tests.service_helpers import serve_command, serve_env

pytestmark = pytest.mark.slow

HISTORY = np.random.default_rng(5).uniform(50, 500, size=48).round(3).tolist()
NAME = "remote"


@contextmanager
def tracking_server(directory: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`mlflow server` on sqlite in `directory`, proxying artifacts; stopped on exit."""
    command = mlflow_server_command(
        f"sqlite:///{directory / 'mlflow.db'}", directory / "artifacts", port
    )
    url = f"http://127.0.0.1:{port}"
    log = directory / f"mlflow-{time.monotonic_ns()}.log"
    with running_server(command, f"{url}/health", log) as process:
        yield process


@contextmanager
def tracking_at(url: str) -> Iterator[None]:
    """Point this process's MLflow client at `url`; restore after."""
    saved_env, saved_uri = os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = url
    mlflow.set_tracking_uri(url)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_uri)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


def register_remote(store: ServedStore, url: str) -> None:
    """Log an untrained `remote` v1 through the server (artifacts too), alias champion."""
    from stackcast.training.registry import log_forecaster

    torch.manual_seed(0)
    model = StackedRNNForecaster(store.config)
    example = np.random.default_rng(0).uniform(1, 100, (2, store.config.input_size))
    with tracking_at(url):
        # An explicit experiment, not mlflow.set_experiment: that would leave a process-wide
        # active experiment id behind for later tests on other stores.
        with mlflow.start_run(experiment_id=mlflow.create_experiment("outage")):
            uri = log_forecaster(model, example.astype(np.float32), "model")
        version = mlflow.register_model(uri, NAME).version
        MlflowClient().set_registered_model_alias(NAME, "champion", version)


@contextmanager
def service(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`stackcast serve` in its own process group, whether or not it becomes healthy."""
    with log.open("w") as out:
        process = subprocess.Popen(
            serve_command(), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def wait_for(condition: str, check: Callable[[], bool], timeout: float) -> float:
    """Poll `check()` until true; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {condition}")


def _health(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code
    except httpx.HTTPError:
        return None


def _predict(url: str) -> httpx.Response:
    return httpx.post(f"{url}/predict", json={"series": [{"history": HISTORY}]}, timeout=30)


def test_service_waits_for_the_tracking_server_then_outlives_its_outage(
    served_store: ServedStore, tmp_path: Path
) -> None:
    mlflow_port, port = free_port(), free_port()
    tracking = f"http://127.0.0.1:{mlflow_port}"
    with tracking_server(tmp_path, mlflow_port):
        register_remote(served_store, tracking)
    # The tracking server is down: the service starts anyway and waits for it.
    env = serve_env(served_store, port, reload_interval="1", startup_timeout="300")
    env.update(STACKCAST_TRACKING_URI=tracking, STACKCAST_MODEL_URI=f"models:/{NAME}@champion")
    url, log = f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    retrying = f"tracking server {tracking} unreachable (ConnectionError); retrying in"
    with service(env, log) as process:
        wait_for("two retries logged", lambda: log.read_text().count(retrying) >= 2, 120)
        assert process.poll() is None and _health(url) is None
        assert "retrying in 2.0 s (attempt 2 failed)" in log.read_text()

        with tracking_server(tmp_path, mlflow_port) as mlflow_process:
            up = wait_for("healthy once the registry is up", lambda: _health(url) == 200, 120)
            print(f"\ntracking server up -> service healthy: {up:.1f} s")
            first = _predict(url)
            assert first.status_code == 200, first.text
            assert first.json()["model"]["version"] == "1"

            os.killpg(mlflow_process.pid, signal.SIGKILL)  # the tracking server crashes
            mlflow_process.wait(timeout=30)
            outage = (
                f"tracking server {tracking} unreachable (ConnectionError); still serving "
                "version 1, checking again every 1 s"
            )
            wait_for("the watcher logs the outage", lambda: outage in log.read_text(), 30)
            time.sleep(3.0)  # three more alias checks during the outage
            for _ in range(5):
                during = _predict(url)
                assert during.status_code == 200, during.text
                assert during.json()["forecasts"] == first.json()["forecasts"]
            assert _health(url) == 200 and process.poll() is None

        with tracking_server(tmp_path, mlflow_port):
            back = f"tracking server {tracking} reachable again"
            wait_for("the watcher logs the recovery", lambda: back in log.read_text(), 30)
            text = log.read_text()
    assert text.count(outage) == 1  # one line per outage, not one per check
    assert "Traceback" not in text


def test_service_gives_up_loudly_after_the_startup_timeout(
    served_store: ServedStore, tmp_path: Path
) -> None:
    tracking = f"http://127.0.0.1:{free_port()}"  # nothing will ever listen there
    env = serve_env(served_store, free_port(), startup_timeout="4")
    env["STACKCAST_TRACKING_URI"] = tracking
    done = subprocess.run(serve_command(), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitCode.TRACKING_UNREACHABLE, done.stderr[-3000:]
    assert (
        f"error: tracking server {tracking} still unreachable (ConnectionError) after 3 attempts "
        "in 4 s (STACKCAST_STARTUP_TIMEOUT); giving up"
    ) in done.stderr
