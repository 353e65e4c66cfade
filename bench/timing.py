"""A Lightning callback that times training steps, for any Lightning namespace.

neuralforecast runs on `pytorch_lightning`, stackcast on `lightning`; a Trainer accepts only
callbacks of its own namespace, so the timer is built for whichever base class is given.
"""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.callbacks import Callback

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
