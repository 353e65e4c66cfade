"""Timing training steps: a step-timer callback for any Lightning namespace, and our module alone.

neuralforecast runs on `pytorch_lightning`, stackcast on `lightning`; a Trainer accepts only
callbacks of its own namespace, so the timer is built for whichever base class is given.
`bare_trainer` is the Trainer every benchmark uses to run `ForecastModule` without MLflow,
checkpoints or validation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.config import TrainConfig
from stackcast.training.datamodule import SeriesDataModule
from stackcast.training.module import ForecastModule

WARMUP = 3  # steps left out of every timing: first-call allocations, caches


def timer_for(base: type) -> type:
    """A step-timer Callback class deriving from `base` (a Lightning `Callback`)."""

    class TrainingTimer(base):  # type: ignore[misc, valid-type]
        """Wall time from the start of step WARMUP to the end of the last training step.

        Everything between steps (data loading, logging, telemetry, the loop itself) is
        inside; validation (between epochs, or after the last step) is not.
        """

        def __init__(self) -> None:
            super().__init__()
            self.start = self.end = 0.0
            self.steps = 0
            self.validation = 0.0  # seconds validating between timed steps
            self._val_start = self._pending = 0.0

        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            if trainer.global_step == WARMUP and self.start == 0.0:
                self.start = time.perf_counter()
            elif self.start:
                self.validation += self._pending  # it ran between two timed steps
            self._pending = 0.0

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            self.end = time.perf_counter()
            self.steps = trainer.global_step - WARMUP

        def on_validation_start(self, trainer: Any, *args: Any) -> None:
            self._val_start = time.perf_counter()

        def on_validation_end(self, trainer: Any, *args: Any) -> None:
            self._pending = time.perf_counter() - self._val_start

        def seconds_per_step(self) -> float:
            return (self.end - self.start - self.validation) / self.steps

    return TrainingTimer


TrainingTimer = timer_for(Callback)


def bare_trainer(
    config: TrainConfig,
    limit: int,
    callbacks: Sequence[Callback] = (),
    accelerator: str = "cpu",
    precision: str = "32-true",
) -> L.Trainer:
    """One epoch of `limit` steps with the run's clipping; no logger, checkpoints or validation."""
    return L.Trainer(
        max_epochs=1,
        limit_train_batches=limit,
        limit_val_batches=0,
        precision=precision,  # type: ignore[arg-type]
        gradient_clip_val=config.trainer.gradient_clip_val,
        callbacks=list(callbacks),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator=accelerator,
        devices=1,
    )


def module_seconds_per_step(
    config: TrainConfig,
    dm: SeriesDataModule,
    steps: int,
    model: ModelConfig | None = None,
    accelerator: str = "cpu",
    precision: str = "32-true",
) -> float:
    """Seconds per step of `ForecastModule` alone (loss, clipping, AdamW), after WARMUP steps."""
    module = ForecastModule(StackedRNNForecaster(model or config.model), config.optim)
    timer = TrainingTimer()
    bare_trainer(config, steps + WARMUP, [timer], accelerator, precision).fit(module, datamodule=dm)
    return float(timer.seconds_per_step())
