"""Gradient telemetry in real training: map shapes, verdicts on built-to-fail tasks, NaN stop."""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.config import OptimConfig
from stackcast.training.datamodule import SeriesDataModule
from stackcast.training.module import ForecastModule
from stackcast.training.telemetry import GradientTelemetry, NonFiniteLossError
from stackcast.training.train import train
from tests.conftest import TinyConfig

pytestmark = pytest.mark.slow


def _series(length: int, count: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return {
        f"S{i}": 100 + 20 * np.sin(2 * np.pi * t / 24 + i) + rng.normal(0, 2, length)
        for i in range(count)
    }


def _fit(
    config: ModelConfig,
    telemetry: GradientTelemetry,
    steps: int = 6,
    clip: float | None = 1.0,
    prepare: Any = None,
) -> StackedRNNForecaster:
    L.seed_everything(0, verbose=False)
    model = StackedRNNForecaster(config)
    if prepare is not None:
        prepare(model)
    dm = SeriesDataModule(
        _series(config.input_size + config.horizon + 40),
        model=config,
        batch_size=16,
    )
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=steps,
        limit_val_batches=0,
        gradient_clip_val=clip,
        callbacks=[telemetry],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(ForecastModule(model, OptimConfig(lr=1e-3)), datamodule=dm)
    return model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("layers", [1, 2, 4])
def test_the_map_has_a_row_per_layer_and_a_column_per_step(cell: str, layers: int) -> None:
    config = ModelConfig(cell=cell, input_size=24, horizon=4, hidden_size=8, num_layers=layers)
    telemetry = GradientTelemetry(every_n_steps=2, probe_size=8)
    _fit(config, telemetry, steps=5)
    assert [m.step for m in telemetry.maps] == [0, 2, 4]
    for recorded in telemetry.maps:
        assert np.asarray(recorded.norms).shape == (layers, 24)
        assert np.isfinite(recorded.norms).all() and np.asarray(recorded.norms).min() >= 0
    assert set(telemetry.last_weight_norms) == {
        *(f"grad/l{k}/weight_{w}" for k in range(layers) for w in ("ih", "hh")),
        "grad/head",
    }


def test_large_recurrent_weights_without_clipping_are_exploding() -> None:
    config = ModelConfig(cell="rnn_relu", input_size=32, horizon=4, hidden_size=16, init="identity")

    def scale_up(model: StackedRNNForecaster) -> None:
        with torch.no_grad():
            model.layers[0].weight_hh_l0.mul_(2.0)  # spectral radius 2 over 32 steps

    telemetry = GradientTelemetry(every_n_steps=1, probe_size=8)
    with suppress(NonFiniteLossError):  # diverging to inf/NaN is exploding too
        _fit(config, telemetry, steps=4, clip=None, prepare=scale_up)
    verdict = telemetry.verdict()
    assert verdict.label == "exploding", verdict.reason
    assert verdict.bottom_decay_ratio is not None and verdict.bottom_decay_ratio > 1e3


def test_a_long_tanh_rnn_is_vanishing() -> None:
    config = ModelConfig(cell="rnn_tanh", input_size=96, horizon=4, hidden_size=16)
    telemetry = GradientTelemetry(every_n_steps=1, probe_size=8)
    _fit(config, telemetry, steps=3)
    verdict = telemetry.verdict()
    assert verdict.label == "vanishing", verdict.reason
    assert verdict.top_decay_ratio is not None and verdict.top_decay_ratio < 1e-3


def test_telemetry_does_not_change_the_training_run() -> None:
    config = ModelConfig(input_size=24, horizon=4, hidden_size=8, num_layers=2, dropout=0.3)
    with_telemetry = _fit(config, GradientTelemetry(every_n_steps=1, probe_size=8), steps=4)
    off = GradientTelemetry(every_n_steps=10_000, probe_size=8)  # first step only
    without = _fit(config, off, steps=4)
    for a, b in zip(with_telemetry.parameters(), without.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_every_run_logs_map_artifacts_metrics_and_a_verdict(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    result = train(tiny_config(trainer={"max_epochs": 2}, telemetry={"every_n_steps": 3}))
    run = MlflowClient().get_run(result.run_id)
    assert run.data.tags["gradients.verdict"] in {"healthy", "vanishing", "exploding"}
    assert "median dL/dh_1 / dL/dh_T" in run.data.tags["gradients.reason"]
    for key in (
        "grad/l0/weight_hh",
        "grad/l1/weight_ih",
        "grad/head",
        "grad_flow/bottom_decay_ratio",
        "grad_flow/top_decay_ratio",
        "whh/l1/spectral_radius",
        "whh/l0/max_singular_value",
    ):
        assert key in run.data.metrics, key
    document = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=result.run_id, artifact_path="gradients/map.json"
            )
        ).read_text()
    )
    assert document["verdict"] == run.data.tags["gradients.verdict"]
    assert np.asarray(document["maps"][0]["norms"]).shape == (2, 24)  # layers x steps
    png = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="gradients")
    assert (Path(png) / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'id="gradient-map"' in (Path(png) / "map.html").read_text()  # the interactive one


def test_a_nan_loss_stops_at_once_keeps_the_checkpoint_and_fails_the_run(
    mlflow_store: str, tiny_config: TinyConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(trainer={"max_epochs": 4, "limit_train_batches": 3})
    poisoned_from = 4  # the second batch of the second epoch
    original = ForecastModule.model_step

    def poisoned(self: ForecastModule, batch: Any, states: Any = None) -> Any:
        loss, pred = original(self, batch, states)
        if self.training and states is None and self.global_step >= poisoned_from:
            loss = loss * float("nan")
        return loss, pred

    monkeypatch.setattr(ForecastModule, "model_step", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 4 \(epoch 1") as stopped:
        train(config)
    message = str(stopped.value)
    assert "last gradient norms (step" in message and "grad/l0/weight_hh=" in message
    kept = Path(message.rsplit("kept checkpoint: ", 1)[1])
    assert kept.exists() and kept.name == "best-epoch=0.ckpt"
    weights = torch.load(kept, weights_only=True)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values())

    run = mlflow.search_runs(experiment_names=["tests"], output_format="list")[0]
    assert run.info.status == "FAILED"
    assert run.data.tags["gradients.verdict"] == "exploding"
    assert run.data.tags["gradients.reason"].startswith("loss nan at step 4")


def test_the_map_and_verdict_cover_every_step_when_the_best_epoch_is_not_the_last(
    mlflow_store: str, tiny_config: TinyConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring the best checkpoint after `fit` must not rewind the run's telemetry to it."""
    original = ForecastModule.model_step

    def worse_every_epoch(self: ForecastModule, batch: Any, states: Any = None) -> Any:
        loss, pred = original(self, batch, states)
        if not self.training:  # validation only: the first epoch stays the best
            loss = loss + 100.0 * self.current_epoch
        return loss, pred

    monkeypatch.setattr(ForecastModule, "model_step", worse_every_epoch)
    config = tiny_config(
        trainer={"max_epochs": 3, "limit_train_batches": 3}, telemetry={"every_n_steps": 1}
    )
    result = train(config)
    assert result is not None and result.best_epoch == 1 and result.epochs == 3
    document = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=result.run_id, artifact_path="gradients/map.json"
            )
        ).read_text()
    )
    steps = [m["step"] for m in document["maps"]]
    assert steps == list(range(9))  # 3 epochs x 3 steps: all of them, not the first epoch's
    assert document["covers"] == {"first_step": 0, "last_step": 8, "maps": 9}
    run = MlflowClient().get_run(result.run_id)
    assert "over 9 maps (train steps 0 to 8)" in run.data.tags["gradients.reason"]
    logged = MlflowClient().get_metric_history(result.run_id, "grad_flow/top_decay_ratio")
    assert max(m.step for m in logged) == steps[-1]
