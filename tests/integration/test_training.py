"""Real training runs on small data, tracked in a real (embedded) MLflow store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from stackcast.training.data import NonFiniteValueError
from stackcast.training.train import train
from tests.conftest import TinyConfig, synthetic_frame

pytestmark = pytest.mark.slow


def _history(client: MlflowClient, run_id: str, key: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_run_logs_config_init_curves_and_model(mlflow_store: str, tiny_config: TinyConfig) -> None:
    result = train(tiny_config(trainer={"max_epochs": 5}))
    client = MlflowClient()
    run = client.get_run(result.run_id)
    params = run.data.params
    for key, value in {
        "model.cell": "lstm",
        "model.num_layers": "2",
        "model.init": "default",
        "trainer.gradient_clip_algorithm": "norm",
        "trainer.gradient_clip_val": "1.0",
        "optim.lr": "0.01",
        "optim.batch_size": "64",
        "trainer.seed": "42",
    }.items():
        assert params[key] == value, key
    assert len(params["data.fingerprint"]) == 16
    assert params["data.num_series"] == "12"
    # The init report: metrics and the JSON artifact.
    assert "init/l1/weight_hh_spectral_radius" in run.data.metrics
    report = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=result.run_id, artifact_path="init_report.json"
            )
        ).read_text()
    )
    assert [layer["layer"] for layer in report["layers"]] == [0, 1]
    # Learning curves: one point per epoch, and the loss drops.
    train_loss = _history(client, result.run_id, "train/loss")
    assert len(train_loss) == 5
    assert train_loss[-1] < 0.7 * train_loss[0]
    for key in (
        "val/loss",
        "val/smape",
        "val/mase",
        "val/owa",
        "grad/norm_pre_clip",
        "grad/clipped",
    ):
        assert len(_history(client, result.run_id, key)) >= 5, key
    assert run.data.tags["registered_version"] == "1"
    assert run.info.status == "FINISHED"
    assert result.metrics["val/loss"] == pytest.approx(
        min(_history(client, result.run_id, "val/loss")), rel=1e-5
    )


def test_norm_clipping_caps_the_gradient(mlflow_store: str, tiny_config: TinyConfig) -> None:
    threshold = 0.05
    result = train(tiny_config(trainer={"max_epochs": 2, "gradient_clip_val": threshold}))
    client = MlflowClient()
    pre = _history(client, result.run_id, "grad/norm_pre_clip_max")
    post = _history(client, result.run_id, "grad/norm_post_clip_max")
    assert max(pre) > threshold  # clipping had something to do
    assert max(post) <= threshold * (1 + 1e-4)  # and the norm never got past it
    assert _history(client, result.run_id, "grad/clipped")[-1] > 0.5


def test_without_clipping_the_norm_is_untouched(mlflow_store: str, tiny_config: TinyConfig) -> None:
    result = train(tiny_config(trainer={"max_epochs": 1, "gradient_clip_val": None}))
    client = MlflowClient()
    pre = _history(client, result.run_id, "grad/norm_pre_clip")
    post = _history(client, result.run_id, "grad/norm_post_clip")
    assert pre == pytest.approx(post)
    assert _history(client, result.run_id, "grad/clipped") == [0.0]


def test_value_clipping_reports_clipped_steps(mlflow_store: str, tiny_config: TinyConfig) -> None:
    result = train(
        tiny_config(
            trainer={"max_epochs": 1, "gradient_clip_val": 1e-4, "gradient_clip_algorithm": "value"}
        )
    )
    client = MlflowClient()
    assert _history(client, result.run_id, "grad/clipped") == [1.0]
    # Value clipping bounds every element, so the norm is at most sqrt(#params) * threshold.
    n = int(client.get_run(result.run_id).data.params["model.num_parameters"])
    assert max(_history(client, result.run_id, "grad/norm_post_clip_max")) <= (n**0.5) * 1e-4


def test_bad_data_fails_the_run_loudly(
    mlflow_store: str, tiny_config: TinyConfig, tmp_path: Path
) -> None:
    frame = synthetic_frame(num_series=3)
    frame.loc[5, "y"] = float("nan")
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(NonFiniteValueError, match="S0"):
        train(tiny_config(data={"path": str(path)}))
    filled = train(
        tiny_config(data={"path": str(path), "fill": "interpolate"}, trainer={"max_epochs": 1})
    )
    assert filled.registration.version == 1


def test_bf16_on_cpu_is_refused(mlflow_store: str, tiny_config: TinyConfig) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: bf16 is allowed")
    with pytest.raises(ValueError, match="bf16-mixed"):
        train(tiny_config(trainer={"precision": "bf16-mixed"}))


def test_seeded_runs_are_reproducible(mlflow_store: str, tiny_config: TinyConfig) -> None:
    first = train(tiny_config(trainer={"max_epochs": 1}))
    second = train(tiny_config(trainer={"max_epochs": 1}))
    assert first.metrics["val/loss"] == pytest.approx(second.metrics["val/loss"], rel=1e-6)
    assert pd.notna(first.metrics["val/owa"])


def test_two_runs_of_one_seeded_config_get_meaningful_distinct_names(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    config = tiny_config(trainer={"max_epochs": 1, "limit_train_batches": 2})
    names = []
    for _ in range(2):
        result = train(config)
        assert result is not None
        names.append(mlflow.get_run(result.run_id).info.run_name)
    assert names[0] != names[1]
    assert all(re.fullmatch(r"lstm-2x16-series-h12-[0-9a-f]{4}", n) for n in names), names


def test_the_experiment_is_tagged_as_model_training(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    config = tiny_config(trainer={"max_epochs": 1, "limit_train_batches": 2})
    assert train(config) is not None
    experiment = mlflow.get_experiment_by_name(config.registry.experiment)
    assert experiment is not None
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
