"""The `train` verb: data -> Lightning fit -> MLflow run -> registered model version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

from models import StackedRNNForecaster, flatten_init_report, init_report
from training.config import DataConfig, TrainConfig
from training.data import data_fingerprint, load_series
from training.datamodule import SeriesDataModule
from training.gradient_report import log_gradient_report
from training.m4 import load_m4_hourly
from training.module import ForecastModule
from training.registry import Registration, log_forecaster, register_model
from training.telemetry import GradientTelemetry
from training.tracking import configure_tracking, experiment_id


@dataclass(frozen=True)
class TrainResult:
    """What one `train` call produced."""

    run_id: str
    model_uri: str
    registration: Registration
    metrics: dict[str, float]  # validation metrics of the best checkpoint
    epochs: int


def load_training_series(data: DataConfig, min_length: int) -> dict[str, np.ndarray]:
    """The series to train on: the bundled M4 Hourly train part, or a long-format file."""
    if data.source == "m4_hourly":
        split = load_m4_hourly()
        return dict(zip(split.ids, split.train, strict=True))
    assert data.path is not None  # guaranteed by DataConfig's validator
    return load_series(data.path, min_length=min_length, fill=data.fill)


def build_datamodule(config: TrainConfig, series: dict[str, np.ndarray]) -> SeriesDataModule:
    """Training and validation windows of `series` as `config` cuts them."""
    return SeriesDataModule(
        series,
        input_size=config.model.input_size,
        horizon=config.model.horizon,
        batch_size=config.optim.batch_size,
        stride=config.data.stride,
        samples_per_epoch=config.data.samples_per_epoch,
        seasonality=config.data.seasonality,
    )


def _check_accelerator(config: TrainConfig) -> None:
    if config.trainer.precision == "bf16-mixed" and not torch.cuda.is_available():
        raise ValueError("trainer.precision='bf16-mixed' needs a GPU; use '32-true' on CPU")
    if config.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        raise ValueError("trainer.accelerator='gpu' but no CUDA device is visible")


def build_telemetry(config: TrainConfig) -> GradientTelemetry | None:
    """The gradient telemetry callback the config asks for (None when it is off)."""
    t = config.telemetry
    if not t.enabled:
        return None
    return GradientTelemetry(t.every_n_steps, t.probe_size, t.vanishing_ratio, t.exploding_ratio)


def build_trainer(
    config: TrainConfig,
    run_id: str,
    telemetry: GradientTelemetry | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> L.Trainer:
    """Lightning Trainer: clipping, early stopping and best checkpoint, logging into `run_id`."""
    t = config.trainer
    return L.Trainer(
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=1,
        precision=t.precision,
        gradient_clip_val=t.gradient_clip_val,
        gradient_clip_algorithm=t.gradient_clip_algorithm,
        callbacks=[
            ModelCheckpoint(
                dirpath=Path(t.checkpoint_dir) / run_id,
                monitor="val/loss",
                mode="min",
                filename="best-{epoch}",
            ),
            EarlyStopping(monitor="val/loss", mode="min", patience=t.patience),
            *([telemetry] if telemetry is not None else []),
            *extra_callbacks,
        ],
        logger=MLFlowLogger(tracking_uri=mlflow.get_tracking_uri(), run_id=run_id),
        limit_train_batches=t.limit_train_batches,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=1,
    )


def train(config: TrainConfig, extra_callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train, track and register one model as `config` describes.

    `extra_callbacks` join the Trainer's own (e.g. a benchmark's timer).
    """
    _check_accelerator(config)
    configure_tracking()
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    m = config.model
    series = load_training_series(config.data, min_length=m.input_size + m.horizon)
    dm = build_datamodule(config, series)
    model = StackedRNNForecaster(m)
    report = init_report(model)
    tags = {"cell": m.cell, "num_layers": str(m.num_layers), "init": m.init}  # run and version
    module = ForecastModule(
        model,
        config.optim,
        val_naive2=dm.naive2_scores(),
        seasonality=config.data.seasonality,
    )

    with mlflow.start_run(
        experiment_id=experiment_id(config.registry.experiment), log_system_metrics=True
    ) as run:
        run_id = run.info.run_id
        mlflow.log_params(
            {
                **config.flat(),
                "data.fingerprint": data_fingerprint(series),
                "data.num_series": len(series),
                "data.num_train_windows": dm.num_train_windows,
                "model.num_parameters": sum(p.numel() for p in model.parameters()),
            }
        )
        mlflow.log_metrics(flatten_init_report(report))
        mlflow.log_dict(report, "init_report.json")

        mlflow.set_tags(tags)
        telemetry = build_telemetry(config)
        trainer = build_trainer(config, run_id, telemetry, extra_callbacks)
        try:
            trainer.fit(module, datamodule=dm)  # NonFiniteLossError ends the run as FAILED
        finally:
            if telemetry is not None:
                log_gradient_report(telemetry.maps, telemetry.verdict())
        epochs = trainer.current_epoch
        # Restore the best checkpoint's weights and score them once more.
        scores = trainer.validate(module, datamodule=dm, ckpt_path="best", verbose=False)[0]
        best = {f"best/{k.replace('/', '_')}": float(v) for k, v in scores.items()}
        mlflow.log_metrics(best)
        mlflow.log_metric("epochs_trained", epochs)
        model_uri = log_forecaster(module.model, dm.val_x[:2].numpy(), name="model")
        registration = register_model(
            model_uri,
            name=config.registry.model_name,
            alias=config.registry.alias,
            metric=config.registry.metric,
            value=float(scores[config.registry.metric]),
            tags=tags,
        )
        mlflow.set_tags(
            {
                "registered_model": registration.name,
                "registered_version": str(registration.version),
                "alias_moved": str(registration.alias_moved).lower(),
            }
        )
    return TrainResult(
        run_id, model_uri, registration, {k: float(v) for k, v in scores.items()}, epochs
    )
