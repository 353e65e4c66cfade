"""Shared fixtures: synthetic long-format data, an isolated MLflow store, tiny configs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from training.config import TrainConfig


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
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    yield uri
    if mlflow.active_run() is not None:
        mlflow.end_run()


TinyConfig = Callable[..., TrainConfig]


@pytest.fixture
def tiny_config(synthetic_csv: Path) -> TinyConfig:
    """Build a small, fast TrainConfig on the synthetic file; keyword args override sections."""

    def build(**sections: dict[str, Any]) -> TrainConfig:
        tree: dict[str, dict[str, Any]] = {
            "model": {
                "cell": "lstm",
                "input_size": 24,
                "horizon": 12,
                "hidden_size": 16,
                "num_layers": 2,
                "season_length": None,
            },
            "data": {"source": "file", "path": str(synthetic_csv)},
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

    return build
