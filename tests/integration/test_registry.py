"""A model round-trips through the MLflow registry by alias, weights-only."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.registry import (
    Registration,
    comparability_tags,
    log_forecaster,
    register_model,
)
from stackcast.training.tracking import configure_tracking
from stackcast.training.train import train
from tests.conftest import TinyConfig

pytestmark = pytest.mark.slow


def _forbid_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the load path tried to unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)


def test_roundtrip_by_alias_is_exact_and_weights_only(
    mlflow_store: str, tiny_config: TinyConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(trainer={"max_epochs": 2})
    result = train(config)
    windows = np.random.default_rng(1).uniform(10, 500, size=(7, 24)).astype(np.float32)

    uri = f"models:/{config.registry.model_name}@{config.registry.alias}"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    files = {p.name for p in local.rglob("*") if p.is_file()}
    assert "weights.safetensors" in files and "model_config.json" in files
    assert not [f for f in files if f.endswith((".pkl", ".pt", ".pth", ".ckpt"))]

    _forbid_unpickling(monkeypatch)
    loaded = mlflow.pyfunc.load_model(uri)
    network = loaded.unwrap_python_model().model
    assert network.config == ModelConfig.model_validate(config.model.model_dump())
    served = loaded.predict(windows)

    # The same weights, straight from the training run's registered version.
    version = MlflowClient().get_model_version(config.registry.model_name, "1")
    assert version.run_id == result.run_id
    with torch.inference_mode():
        direct = network(torch.from_numpy(windows)).numpy()
    np.testing.assert_array_equal(served, direct)
    assert served.shape == (7, 12)


SAME = comparability_tags(fingerprint="f" * 16, horizon=4, val_windows=1, val_step=4)


def test_alias_moves_only_on_improvement(mlflow_store: str) -> None:
    configure_tracking()
    model = StackedRNNForecaster(ModelConfig(input_size=8, horizon=4, hidden_size=4))
    example = np.ones((2, 8), dtype=np.float32)
    with mlflow.start_run():
        uri = log_forecaster(model, example, name="model")

    def register(value: float) -> tuple[int, bool]:
        reg = register_model(
            uri,
            name="m",
            alias="champion",
            metric="val/owa",
            value=value,
            tags={"cell": "lstm", "num_layers": "2", "init": "default"},
            comparable=SAME,
        )
        return reg.version, reg.alias_moved

    assert register(0.50) == (1, True)  # the first version takes the alias
    assert register(0.70) == (2, False)  # worse: stays
    assert register(0.50) == (3, False)  # equal is not better
    assert register(0.40) == (4, True)  # better: moves
    client = MlflowClient()
    champion = client.get_model_version_by_alias("m", "champion")
    assert int(champion.version) == 4
    assert champion.tags["validation_metric"] == "val/owa"
    assert float(champion.tags["validation_metric_value"]) == pytest.approx(0.40)
    assert {"cell", "num_layers", "init"} <= set(champion.tags)
    # A champion scored on another metric is not comparable: the alias stays put.
    reg = register_model(
        uri, name="m", alias="champion", metric="val/smape", value=0.01, tags={}, comparable=SAME
    )
    assert not reg.alias_moved


def _logged_model() -> str:
    configure_tracking()
    model = StackedRNNForecaster(ModelConfig(input_size=8, horizon=4, hidden_size=4))
    with mlflow.start_run():
        return log_forecaster(model, np.ones((2, 8), dtype=np.float32), name="model")


@pytest.mark.parametrize(
    ("other", "reason"),
    [
        (
            {"fingerprint": "a" * 16},
            f"validated on other data: data_fingerprint {'a' * 16} != {'f' * 16}",
        ),
        ({"horizon": 8, "val_step": 8}, "validated at another horizon: horizon 8 != 4"),
        ({"val_windows": 5}, "validated on other windows: val_windows 5 != 1"),
    ],
)
def test_a_better_score_on_other_validation_does_not_take_the_alias(
    mlflow_store: str, other: dict[str, Any], reason: str
) -> None:
    uri = _logged_model()
    validated = {"fingerprint": "f" * 16, "horizon": 4, "val_windows": 1, "val_step": 4} | other

    def register(value: float, comparable: dict[str, str], promote: bool = False) -> Registration:
        return register_model(
            uri,
            name="m",
            alias="champion",
            metric="val/owa",
            value=value,
            tags={},
            comparable=comparable,
            promote=promote,
        )

    register(0.50, SAME)
    elsewhere = comparability_tags(**validated)
    stayed = register(0.10, elsewhere)  # far better, but on other data / horizon / windows
    assert stayed.alias_moved is False and stayed.comparable is False
    assert reason in stayed.reason
    client = MlflowClient()
    assert int(client.get_model_version_by_alias("m", "champion").version) == 1
    # The version is registered all the same, with what it was validated on.
    tags = client.get_model_version("m", "2").tags
    assert {k: tags[k] for k in elsewhere} == elsewhere

    promoted = register(0.90, elsewhere, promote=True)  # worse and incomparable: --promote
    assert promoted.alias_moved and promoted.previous_champion == 1
    assert promoted.reason.startswith("promoted, although ") and reason in promoted.reason
    assert int(client.get_model_version_by_alias("m", "champion").version) == 3
    # Now the champion was validated like `elsewhere`: a better score of that kind moves it.
    assert register(0.80, elsewhere).alias_moved


def test_a_champion_without_validation_tags_is_not_compared(mlflow_store: str) -> None:
    uri = _logged_model()
    old = mlflow.register_model(uri, "m")  # as an older stackcast left it: no tags
    MlflowClient().set_registered_model_alias("m", "champion", old.version)
    reg = register_model(
        uri, name="m", alias="champion", metric="val/owa", value=0.1, tags={}, comparable=SAME
    )
    assert not reg.alias_moved and not reg.comparable
    assert "registered by an older stackcast" in reg.reason
