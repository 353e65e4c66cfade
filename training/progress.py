"""One line per epoch on the command's output, for logs a progress bar cannot reach."""

from __future__ import annotations

import time
from collections.abc import Callable

import lightning as L
from lightning.pytorch.callbacks import Callback


class EpochLines(Callback):
    """`epoch 3/40  train/loss 0.0712  val/loss 0.0961  val/owa 0.4702  14.8 s`, per epoch.

    For output that is not a terminal (CI, containers, redirected runs) or a run without the
    progress bar. Rank zero only; written after validation, when the epoch's numbers exist.
    """

    def __init__(self, echo: Callable[[str], None], metric: str) -> None:
        self.echo, self.metric = echo, metric
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the epoch's clock."""
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the epoch's line."""
        if not trainer.is_global_zero:
            return
        seen = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        parts += [f"{k} {float(seen[k]):.4f}" for k in ("train/loss", "val/loss") if k in seen]
        if self.metric in seen and self.metric != "val/loss":
            parts.append(f"{self.metric} {float(seen[self.metric]):.4f}")
        parts.append(f"{time.perf_counter() - self._started:.1f} s")
        self.echo("  ".join(parts))
