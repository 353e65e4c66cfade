"""The lab's divergence rule: a run diverges when its loss or score leaves a finite bound."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import pytest

from stackcast.models import StackedRNNForecaster
from stackcast.training.adding import AddingDataModule, adding_model_config
from stackcast.training.config import OptimConfig
from stackcast.training.lab_divergence import (
    DIVERGENCE_BOUND,
    TRAINING_LOSS,
    VALIDATION_SCORE,
    DivergenceWatch,
    beyond,
)
from stackcast.training.module import ForecastModule

ISSUE_SCORE = 2.16e10  # issue 12: a tiny-lab run that was recorded `diverged: False`


def test_the_bound_is_finite_and_catches_what_nan_checks_miss() -> None:
    assert math.isfinite(DIVERGENCE_BOUND)
    assert beyond(ISSUE_SCORE)
    assert beyond(math.nan) and beyond(math.inf)
    assert not beyond(24.0)  # the small budget's worst finite run: bad, still learning
    assert not beyond(DIVERGENCE_BOUND) and beyond(DIVERGENCE_BOUND * 1.01)


def test_a_bound_that_cannot_separate_anything_is_refused() -> None:
    for bound in (math.inf, math.nan, 1.0, 0.5):
        with pytest.raises(ValueError, match="bound"):
            DivergenceWatch(lambda metrics: None, bound=bound)


def _fit(
    watch: DivergenceWatch,
    epochs: int,
    train: int = 128,
    cell: str = "gru",
    sgd_lr: float | None = None,
) -> L.Trainer:
    """Train on `train` adding sequences (64 a step); AdamW, or SGD at `sgd_lr`."""
    L.seed_everything(0, verbose=False)
    model = StackedRNNForecaster(adding_model_config(8, cell=cell, hidden_size=8))
    optim = OptimConfig(loss="mse", lr=1e-2, batch_size=64)
    if sgd_lr is not None:
        optim = OptimConfig(loss="mse", lr=sgd_lr, batch_size=64, optimizer="sgd")
    module = ForecastModule(model, optim)
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[watch],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=AddingDataModule(8, train, 64, 64, seed=0))
    return trainer


def test_a_planted_score_past_the_bound_stops_the_run_and_says_where() -> None:
    def planted(metrics: Mapping[str, Any]) -> float:
        return ISSUE_SCORE

    watch = DivergenceWatch(planted)
    trainer = _fit(watch, epochs=3)
    assert watch.excursion is not None
    assert watch.excursion.quantity == VALIDATION_SCORE
    assert watch.excursion.ratio == ISSUE_SCORE and watch.peak == ISSUE_SCORE
    assert watch.excursion.epoch == 0 and trainer.global_step == 2  # stopped after epoch 0
    assert watch.excursion.step == 2
    assert "2.16e+10" in watch.excursion.describe() and "1000" in watch.excursion.describe()


def test_a_run_within_the_bound_is_not_diverged() -> None:
    watch = DivergenceWatch(lambda metrics: float(metrics["val/loss"]) * 6)
    trainer = _fit(watch, epochs=2)
    assert watch.excursion is None
    assert trainer.global_step == 4  # both epochs ran
    assert watch.first_loss is not None and 0 < watch.peak < DIVERGENCE_BOUND
    assert watch.last_score == pytest.approx(float(trainer.callback_metrics["val/loss"]) * 6)


def test_a_training_loss_past_the_bound_stops_the_run_at_that_step() -> None:
    watch = DivergenceWatch(lambda metrics: None)  # no score: only the loss can leave
    trainer = _fit(watch, epochs=1, train=512, cell="rnn_relu", sgd_lr=5.0)  # 8 steps at most
    excursion = watch.excursion
    assert excursion is not None and excursion.quantity == TRAINING_LOSS
    assert excursion.ratio > DIVERGENCE_BOUND and watch.peak == excursion.ratio
    assert trainer.global_step == excursion.step < 8  # it stopped there
