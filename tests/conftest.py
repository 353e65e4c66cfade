"""Shared fixtures: synthetic long-format data, an isolated MLflow store, tiny configs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.config import TrainConfig


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by its folder: unit, integration or e2e."""
    for item in items:
        for level in ("unit", "integration", "e2e"):
            if f"tests/{level}/" in str(item.fspath).replace("\\", "/"):
                item.add_marker(getattr(pytest.mark, level))


def synthetic_frame(num_series: int = 12, length: int = 160, seed: int = 0) -> pd.DataFrame:
    """Daily-seasonal series with different levels and trends, long format."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    rows = []
    for i in range(num_series):
        level = rng.uniform(50, 500)
        y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24 + i) + 0.001 * t)
        y = y + rng.normal(0, 0.02 * level, length)
        rows.append(pd.DataFrame({"unique_id": f"S{i}", "ds": t, "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "series.csv"
    synthetic_frame().to_csv(path, index=False)
    return path


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh embedded MLflow store; the test runs in its own working directory."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # A URI set in-process earlier (`in_store`, a command run through CliRunner) wins over
    # the environment: point MLflow's client here too.
    mlflow.set_tracking_uri(uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    # An experiment made active by an earlier test (mlflow.set_experiment) names an id in
    # another store; runs started here must fall back to this store's default experiment.
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    yield uri
    if mlflow.active_run() is not None:
        mlflow.end_run()


TinyConfig = Callable[..., TrainConfig]


def tiny_train_config(csv: Path, **sections: dict[str, Any]) -> TrainConfig:
    """A small, fast TrainConfig on the file `csv`; keyword args override sections."""
    tree: dict[str, dict[str, Any]] = {
        "model": {
            "cell": "lstm",
            "input_size": 24,
            "horizon": 12,
            "hidden_size": 16,
            "num_layers": 2,
            "season_length": None,
        },
        "data": {"source": "file", "path": str(csv)},
        "optim": {"batch_size": 64, "lr": 0.01},
        "trainer": {
            "max_epochs": 4,
            "patience": 10,
            "progress_bar": False,
            "accelerator": "cpu",
        },
        "registry": {"experiment": "tests", "model_name": "tiny"},
    }
    for name, values in sections.items():
        tree[name] = {**tree.get(name, {}), **values}
    return TrainConfig.model_validate(tree)


@pytest.fixture
def tiny_config(synthetic_csv: Path) -> TinyConfig:
    """Build a small, fast TrainConfig on the synthetic file; keyword args override sections."""

    def build(**sections: dict[str, Any]) -> TrainConfig:
        return tiny_train_config(synthetic_csv, **sections)

    return build


@contextmanager
def in_store(directory: Path) -> Iterator[str]:
    """Point MLflow (and the cwd) at the embedded store in `directory`; restore after."""
    import mlflow

    uri = f"sqlite:///{directory / 'mlflow.db'}"
    saved_env, saved_cwd = os.environ.get("MLFLOW_TRACKING_URI"), Path.cwd()
    saved_uri = mlflow.get_tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.chdir(directory)
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        os.chdir(saved_cwd)
        mlflow.set_tracking_uri(saved_uri)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


@dataclass(frozen=True)
class ServedStore:
    """A registry holding `tiny` v1 @champion, trained once per test session."""

    directory: Path
    tracking_uri: str
    name: str
    config: ModelConfig

    @property
    def uri(self) -> str:
        """The champion's model URI."""
        return f"models:/{self.name}@champion"


@pytest.fixture(scope="session")
def served_store(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> ServedStore:
    """Train and register a tiny seasonal model (input 48, season 24, horizon 12)."""
    from stackcast.training.train import train

    directory = tmp_path_factory.mktemp("registry")
    config = tiny_train_config(
        synthetic_csv,
        model={"input_size": 48, "season_length": 24},
        trainer={"max_epochs": 2},
    )
    with in_store(directory) as uri:
        train(config)
    return ServedStore(directory, uri, config.registry.model_name, config.model)


def register_version(
    store: ServedStore,
    name: str,
    seed: int,
    alias: str = "champion",
    config: ModelConfig | None = None,
) -> str:
    """Log an untrained model (weights from `seed`) as a new version of `name`; move `alias`."""
    config = config or store.config
    import mlflow
    import torch
    from mlflow.tracking import MlflowClient

    from stackcast.training.registry import log_forecaster

    torch.manual_seed(seed)
    model = StackedRNNForecaster(config)
    example = np.random.default_rng(seed).uniform(1, 100, (2, config.input_size))
    with in_store(store.directory):
        with mlflow.start_run():
            uri = log_forecaster(model, example.astype(np.float32), "model")
        version = mlflow.register_model(uri, name).version
        MlflowClient().set_registered_model_alias(name, alias, version)
    return str(version)
