"""Training against a real `mlflow server` backed by PostgreSQL, as in the deployment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import free_port, mlflow_server_command, running_server
from tests.e2e.train_args import TRAIN, set_args, small_on_file

pytestmark = pytest.mark.slow


@pytest.fixture
def tracking_server(postgres_db: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = mlflow_server_command(postgres_db, tmp_path / "artifacts", port)
    url = f"http://127.0.0.1:{port}"
    with running_server(command, f"{url}/health", tmp_path / "server.log"):
        yield url


def test_train_registers_on_remote_server(
    tracking_server: str, synthetic_csv: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = tracking_server
    command = TRAIN + set_args(
        small_on_file(synthetic_csv) | {"trainer.max_epochs": 2, "registry.model_name": "remote"}
    )
    trained = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "registered: remote version 1" in trained.stdout
    assert not (tmp_path / "mlflow.db").exists()  # the remote store was used, not the default

    # Browse it through MLflow's REST API, as the UI does.
    response = httpx.get(
        f"{tracking_server}/api/2.0/mlflow/registered-models/alias",
        params={"name": "remote", "alias": "champion"},
    )
    assert response.status_code == 200, response.text
    alias = response.json()["model_version"]
    assert alias["version"] == "1"
    run = httpx.get(
        f"{tracking_server}/api/2.0/mlflow/runs/get", params={"run_id": alias["run_id"]}
    ).json()["run"]
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["model.cell"] == "lstm" and params["trainer.gradient_clip_algorithm"] == "norm"
    assert {m["key"] for m in run["data"]["metrics"]} >= {"train/loss", "val/loss", "val/owa"}

    # And a fresh process loads the model by alias through the server's artifact proxy.
    load = (
        "import mlflow, numpy as np; m = mlflow.pyfunc.load_model('models:/remote@champion');"
        "print(m.predict(np.ones((3, 24), dtype='float32')).shape)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", load], env=env, capture_output=True, text=True, timeout=300
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip() == "(3, 12)"
