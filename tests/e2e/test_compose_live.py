"""docker-compose.yml run without Docker: its own commands and environment, as local processes.

The compose file is read and interpolated from .env.example's values; then the tracking server,
the trainer and the model server run the commands it names, with the environment it gives them,
rewriting only what a container network provides: host names, ports and the artifact volume
(`mlflow:5000` -> 127.0.0.1:<free port>, `/mlartifacts` -> a temporary folder, the PostgreSQL
service -> a fresh database on the local PostgreSQL with trust auth). Each runs in a folder laid
out like the image's /app, where only `checkpoints/` may be written.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from stackcast.service.metrics import MULTIPROC_ENV
from stackcast.training.m4 import load_m4_hourly
from tests.compose_file import COMPOSE, ENV_EXAMPLE, ROOT, load, read_env_file
from tests.e2e.servers import free_port, running_server
from tests.e2e.train_args import set_args

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent  # the image's PATH: stackcast, mlflow, python
# Appended to the trainer's command: the bundled M4 Hourly data, a tiny model, one short epoch.
TINY = {
    "model.hidden_size": 16,
    "data.stride": 24,
    "data.samples_per_epoch": 1024,
    "trainer.max_epochs": 1,
    "trainer.progress_bar": False,
}


@dataclass
class Localhost:
    """Where the compose network's names and volumes point when services run as processes."""

    mlflow_port: int
    server_port: int
    database: str  # postgresql://postgres@127.0.0.1:5432/<fresh database>
    artifacts: Path

    def value(self, value: str) -> str:
        value = re.sub(r"postgresql://\S*@postgres:5432/\w+", self.database, value)
        for compose, local in (
            ("mlflow:5000", f"127.0.0.1:{self.mlflow_port}"),
            ("127.0.0.1:5000", f"127.0.0.1:{self.mlflow_port}"),
        ):
            value = value.replace(compose, local)
        return {"/mlartifacts": str(self.artifacts), "0.0.0.0": "127.0.0.1"}.get(value, value)

    def argv(self, argv: list[str]) -> list[str]:
        local = [self.value(arg) for arg in argv]
        for i in range(1, len(local)):
            if local[i - 1] == "--port":  # the container's port -> a free one here
                local[i] = {"5000": str(self.mlflow_port)}[local[i]]
        program = shutil.which(local[0], path=str(VENV_BIN))
        assert program is not None, f"{local[0]} is not installed in {VENV_BIN}"
        return [program, *local[1:]]

    def env(self, service: dict[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STACKCAST_"))}
        env.pop(MULTIPROC_ENV, None)
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        env.update({k: self.value(str(v)) for k, v in service.get("environment", {}).items()})
        return env


def _healthcheck(local: Localhost, service: dict[str, Any], env: dict[str, str]) -> None:
    """Run the service's compose healthcheck command; it must exit 0."""
    kind, *argv = service["healthcheck"]["test"]
    assert kind == "CMD"
    done = subprocess.run(local.argv(argv), env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-2000:]


def test_compose_services_track_train_serve_and_stop_cleanly(
    postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = read_env_file(ENV_EXAMPLE)
    services = load(COMPOSE, env=values)["services"]
    local = Localhost(free_port(), free_port(), postgres_db, tmp_path / "mlartifacts")
    local.artifacts.mkdir()
    app = tmp_path / "app"  # the image's WORKDIR: the code read-only, checkpoints/ writable
    (app / "checkpoints").mkdir(parents=True)
    (app / "configs").symlink_to(ROOT / "configs")
    monkeypatch.chdir(app)

    # The tracking server, on PostgreSQL, with the artifact volume.
    mlflow = services["mlflow"]
    mlflow_argv, mlflow_env = local.argv(mlflow["command"]), local.env(mlflow)
    assert postgres_db in mlflow_argv and str(local.artifacts) in mlflow_argv
    tracking = f"http://127.0.0.1:{local.mlflow_port}"
    mlflow_log = tmp_path / "mlflow.log"
    with running_server(mlflow_argv, f"{tracking}/health", mlflow_log, mlflow_env, timeout=180):
        _healthcheck(local, mlflow, mlflow_env)

        # The one-shot trainer, its command with a tiny config appended.
        trainer = services["trainer"]
        trainer_env = local.env(trainer)
        assert trainer_env["MLFLOW_TRACKING_URI"] == tracking
        sets = set_args(TINY)
        trained = subprocess.run(
            local.argv(trainer["command"]) + sets,
            env=trainer_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert trained.returncode == 0, trained.stderr[-3000:]
        assert "registered: stackcast version 1" in trained.stdout
        assert "alias 'champion' moved to version 1 (new)" in trained.stdout
        run_id = re.search(r"run_id: (\w+)", trained.stdout)
        assert run_id is not None
        assert list(local.artifacts.rglob("model_config.json")), "no model in the artifact volume"

        # The model server, on the champion, with the API key from the environment.
        server = services["server"]
        server_env = local.env(server) | {
            "STACKCAST_HOST": "127.0.0.1",
            "STACKCAST_PORT": str(local.server_port),
        }
        assert server_env["STACKCAST_API_KEY"] == values["STACKCAST_API_KEY"]
        url = f"http://127.0.0.1:{local.server_port}"
        server_log = tmp_path / "server.log"
        with running_server(
            local.argv(server["command"]), f"{url}/health", server_log, server_env, timeout=180
        ) as process:
            _healthcheck(local, server, server_env)
            history = load_m4_hourly().train[0][-168:].tolist()  # H1's last week
            body = {"series": [{"id": "H1", "history": history, "horizon": 24}]}
            assert httpx.post(f"{url}/predict", json=body).status_code == 401
            wrong = {"X-API-Key": "not-the-key-0123456789"}
            assert httpx.post(f"{url}/predict", json=body, headers=wrong).status_code == 401
            key = {"X-API-Key": values["STACKCAST_API_KEY"]}
            answer = httpx.post(f"{url}/predict", json=body, headers=key, timeout=30)
            assert answer.status_code == 200, answer.text
            result = answer.json()
            assert result["model"] == {"name": "stackcast", "version": "1", "run_id": run_id[1]}
            [forecast] = result["forecasts"]
            assert forecast["id"] == "H1" and len(forecast["mean"]) == 24
            # Near the last day's profile (the model adds a learned deviation to it).
            last_day = history[-24:]
            assert all(math.isfinite(v) for v in forecast["mean"])
            error = sum(abs(f - y) for f, y in zip(forecast["mean"], last_day, strict=True))
            assert error / sum(abs(y) for y in last_day) < 0.5

            # Stopped as `docker stop` does: SIGTERM to the main process only.
            family = psutil.Process(process.pid).children(recursive=True)
            assert len(family) >= 3  # queue manager, inference worker, HTTP server at least
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
        assert code == 0, server_log.read_text()[-3000:]
        _, alive = psutil.wait_procs(family, timeout=10)
        assert alive == [], [p.cmdline() for p in alive]

        # The run, browsed through MLflow's REST API as the UI does.
        api = f"{tracking}/api/2.0/mlflow"
        alias = httpx.get(
            f"{api}/registered-models/alias", params={"name": "stackcast", "alias": "champion"}
        )
        assert alias.status_code == 200, alias.text
        version = alias.json()["model_version"]
        assert (version["version"], version["run_id"]) == ("1", run_id[1])
        run = httpx.get(f"{api}/runs/get", params={"run_id": run_id[1]}).json()["run"]
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert params["data.source"] == "m4_hourly"  # configs/m4_hourly.yaml ...
        assert params["model.patch_size"] == "24"
        assert params["model.hidden_size"] == "16"  # ... with the appended overrides
        assert params["trainer.max_epochs"] == "1"
        metrics = {m["key"] for m in run["data"]["metrics"]}
        assert metrics >= {"train/loss", "val/loss", "val/owa", "best/val_owa"}
        assert run["info"]["status"] == "FINISHED"

    # Nothing was written beside the code but checkpoints (the image's only writable folder).
    assert sorted(p.name for p in app.iterdir()) == ["checkpoints", "configs"]
