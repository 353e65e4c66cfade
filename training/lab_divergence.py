"""When a lab run has diverged: its loss or score left a stated finite bound, not only on NaN.

A run diverges when its training loss, in multiples of its first step's loss (the untrained
model's), or its validation score, in multiples of the baseline's (adding: val MSE / 1/6, so
1 = always answering the mean; M4: OWA, so 1 = Naive2), is non-finite or exceeds
`DIVERGENCE_BOUND`. A run that learns nothing sits near 1 on both; one that learns sits below.
A thousand times worse than the untrained model or the baseline is no longer learning badly:
the weights have left the region where training can recover (the small budget's worst run that
did not go to NaN scored 24, a tiny run that did exploded to 2e10), so training stops there,
as it stops on a NaN loss, and the run is recorded as diverged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from stackcast.training.loss_watch import LossWatch, StepLoss

DIVERGENCE_BOUND = 1e3  # x the first step's training loss, x the baseline's validation score

TRAINING_LOSS = "training loss"
VALIDATION_SCORE = "validation score"
_REFERENCE = {TRAINING_LOSS: "its first step's", VALIDATION_SCORE: "the baseline's"}

Score = Callable[[Mapping[str, Any]], float | None]  # Lightning's callback metrics -> score


@dataclass(frozen=True)
class Excursion:
    """Where a run left the bound: which quantity, how far, at which optimizer step."""

    quantity: str  # TRAINING_LOSS or VALIDATION_SCORE
    ratio: float  # the value in multiples of its reference (inf or nan: non-finite)
    step: int  # optimizer steps done
    epoch: int
    bound: float

    def describe(self) -> str:
        """A sentence for the report, the MLflow tag and the gradient verdict's reason."""
        return (
            f"{self.quantity} at {self.ratio:.3g} x {_REFERENCE[self.quantity]} at step "
            f"{self.step} (epoch {self.epoch}), beyond the divergence bound {self.bound:g}"
        )


def beyond(ratio: float, bound: float = DIVERGENCE_BOUND) -> bool:
    """Whether a ratio to the reference is past the bound (non-finite always is)."""
    return not math.isfinite(ratio) or ratio > bound


def _ratio(value: float, reference: float) -> float:
    if reference > 0:
        return value / reference
    return 0.0 if value == 0 else math.inf


class DivergenceWatch(Callback):
    """Stop a run as soon as its training loss or validation score leaves the bound.

    It records the first `excursion`, the `peak` ratio reached by either quantity (inf once one
    is non-finite) and the `last_score` validated. Put it before `GradientTelemetry`, which
    raises on a non-finite loss, so that the excursion is recorded first.
    """

    def __init__(self, score: Score, bound: float = DIVERGENCE_BOUND) -> None:
        """Watch a run.

        Args:
            score: the validation score, in multiples of the baseline's, from Lightning's
                callback metrics (None when the metric is missing).
            bound: the divergence bound, finite and above 1.
        """
        if not (math.isfinite(bound) and bound > 1):
            raise ValueError(f"bound must be finite and > 1, got {bound}")
        self.score = score
        self.bound = bound
        self.first_loss: float | None = None
        self.peak = 0.0
        self.last_score: float | None = None
        self.excursion: Excursion | None = None
        self._losses = LossWatch()

    def _check(
        self, trainer: L.Trainer, quantity: str, ratio: float, step: int, epoch: int
    ) -> None:
        self.peak = max(self.peak, ratio if math.isfinite(ratio) else math.inf)
        if self.excursion is None and beyond(ratio, self.bound):
            self.excursion = Excursion(quantity, ratio, step, epoch, self.bound)
            trainer.should_stop = True  # after a loss excursion, Lightning validates, then stops

    def _check_loss(self, trainer: L.Trainer, known: StepLoss | None) -> None:
        if known is None:
            return
        if self.first_loss is None:
            self.first_loss = known.value
        finite = math.isfinite(self.first_loss)  # a NaN first step: diverged from the start
        ratio = _ratio(known.value, self.first_loss) if finite else math.inf  # NaN stays NaN
        self._check(trainer, TRAINING_LOSS, ratio, known.step, known.epoch)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Read this step's loss (on an accelerator: the last step's, see `LossWatch`)."""
        step, epoch = trainer.global_step, trainer.current_epoch
        self._check_loss(trainer, self._losses.push_output(outputs, step, epoch, batch_idx))

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The last step's loss, before its weights are validated."""
        self._check_loss(trainer, self._losses.settle())

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The epoch's validation score against the bound."""
        if trainer.sanity_checking:
            return
        score = self.score(trainer.callback_metrics)
        if score is not None:
            self.last_score = score
            self._check(
                trainer, VALIDATION_SCORE, score, trainer.global_step, trainer.current_epoch
            )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The last step's loss, if still unread."""
        self._check_loss(trainer, self._losses.settle())
