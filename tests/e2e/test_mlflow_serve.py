"""The logged model is servable by `mlflow models serve`, with the same answers as in-process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest

from stackcast.training.train import train
from tests.conftest import TinyConfig
from tests.e2e.servers import free_port, running_server

pytestmark = pytest.mark.slow


def test_mlflow_models_serve_answers_like_pyfunc(
    mlflow_store: str, tiny_config: TinyConfig, tmp_path: Path
) -> None:
    config = tiny_config(trainer={"max_epochs": 1})
    train(config)
    uri = f"models:/{config.registry.model_name}@champion"
    windows = np.random.default_rng(3).uniform(50, 400, size=(5, 24)).astype(np.float32)
    expected = mlflow.pyfunc.load_model(uri).predict(windows)

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` execs uvicorn from here
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [
        f"{bin_dir}/mlflow",
        "models",
        "serve",
        "-m",
        uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with running_server(command, f"http://127.0.0.1:{port}/ping", tmp_path / "serve.log", env):
        response = httpx.post(
            f"http://127.0.0.1:{port}/invocations", json={"inputs": windows.tolist()}, timeout=30
        )
        assert response.status_code == 200, response.text
        served = np.asarray(response.json()["predictions"], dtype=np.float32)
        np.testing.assert_allclose(served, expected, rtol=1e-6)
        # A window of the wrong length is refused by the logged signature, not answered.
        wrong = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"inputs": windows[:, :10].tolist()},
            timeout=30,
        )
        assert wrong.status_code >= 400
