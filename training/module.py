"""LightningModule wrapping a `StackedRNNForecaster`: one shared step, clipping statistics."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn
from torch.nn.utils import clip_grads_with_norm_, get_total_norm
from torch.optim import Optimizer

from stackcast.models import StackedRNNForecaster
from stackcast.training.config import OptimConfig

_LOSSES = {"mae": nn.functional.l1_loss, "mse": nn.functional.mse_loss}
_MIN_SEASONAL_SCALE = 1e-2  # in units of the window's scale: caps a flat window's weight


def seasonal_scale(z: torch.Tensor, seasonality: int) -> torch.Tensor:
    """Mean |z_t - z_(t-m)| of each window, (B, T) -> (B, 1): the MASE denominator, per window.

    Padding (NaN) is left out; a window with no pair of observed points m apart weighs 1.
    """
    m = seasonality if z.shape[1] > seasonality else 1
    diffs = (z[:, m:] - z[:, :-m]).abs()
    mean = diffs.nanmean(dim=1, keepdim=True).nan_to_num(1.0)
    return mean.clamp_min(_MIN_SEASONAL_SCALE)


class ForecastModule(L.LightningModule):
    """Trains the forecaster on the normalized scale of each window.

    Each window is divided by its own statistics (the model's `window_stats`), so a loss on
    the normalized scale weighs every series alike, whatever its level.
    """

    def __init__(
        self,
        model: StackedRNNForecaster,
        optim: OptimConfig,
        val_naive2: tuple[float, float] | None = None,
        seasonality: int = 24,
    ) -> None:
        """Wrap a model.

        Args:
            model: the forecaster to train.
            optim: loss and optimizer settings.
            val_naive2: Naive2's (sMAPE, MASE) on the validation windows; enables `val/owa`.
            seasonality: seasonal period m of the `mase` loss.
        """
        super().__init__()
        self.model = model
        self.optim = optim
        self.seasonality = seasonality
        self.val_naive2 = val_naive2
        self._val_smape: list[torch.Tensor] = []
        self._val_mase: list[torch.Tensor] = []
        self._clip_stats: torch.Tensor | None = None  # see configure_gradient_clipping

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw-scale forecast, (B, T) -> (B, horizon)."""
        forecast: torch.Tensor = self.model(x)
        return forecast

    def model_step(
        self, batch: tuple[torch.Tensor, ...], states: list[list[torch.Tensor]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss on the normalized scale and the raw-scale forecast.

        With `states`, the model runs step by step and collects every layer's hidden states
        (see `StackedRNNForecaster.encode`): what gradient telemetry differentiates against.
        """
        x, y = batch[0], batch[1]  # (B, T), (B, H)
        loc, scale = self.model.window_stats(x)  # (B, 1) each
        z = (x - loc) / scale
        pred_z = self.model.forward_normalized(z, states)  # (B, H)
        y_z = (y - loc) / scale
        if self.optim.loss == "mase":
            loss = ((pred_z - y_z).abs() / seasonal_scale(z, self.seasonality)).mean()
        else:
            loss = _LOSSES[self.optim.loss](pred_z, y_z)
        return loss, pred_z.detach() * scale + loc

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        """One optimizer step's loss."""
        loss, _ = self.model_step(batch)
        # Lightning keeps the epoch mean (one reduce per epoch under DDP); `on_train_epoch_end`
        # sends it to the loggers, since Lightning's own send comes after the epoch's checkpoint.
        self.log(
            "train/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            logger=False,
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """Validation loss plus per-series sMAPE and MASE on the raw scale.

        Under DDP every rank validates on all series, so the ranks' values agree already;
        `sync_dist` (a mean of equal values) only makes that explicit to Lightning.
        """
        loss, pred = self.model_step(batch)
        y, mase_scale = batch[1], batch[2]
        self.log("val/loss", loss, prog_bar=True, batch_size=len(y), sync_dist=True)
        smape = 200 * ((y - pred).abs() / (y.abs() + pred.abs()).clamp_min(1e-8)).mean(dim=1)
        self._val_smape.append(smape)
        self._val_mase.append((y - pred).abs().mean(dim=1) / mase_scale)

    def on_validation_epoch_end(self) -> None:
        """Series-averaged sMAPE, MASE and (with Naive2 known) OWA of the epoch."""
        smape = torch.cat(self._val_smape).mean()
        mase = torch.cat(self._val_mase).mean()
        self._val_smape.clear()
        self._val_mase.clear()
        self.log_dict({"val/smape": smape, "val/mase": mase}, prog_bar=True, sync_dist=True)
        if self.val_naive2 is not None:
            smape_n2, mase_n2 = self.val_naive2
            owa = 0.5 * (smape / smape_n2 + mase / mase_n2)
            self.log("val/owa", owa, prog_bar=True, sync_dist=True)

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Lightning's clipping, with the norm before and after it and whether it fired.

        The statistics accumulate on the device (no host sync, no per-step logging call) and
        are logged once per epoch by `on_train_epoch_end`.
        """
        params = [p for p in self.parameters() if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params if p.grad is not None]
        before = get_total_norm(grads)  # foreach: one kernel per dtype and device
        if gradient_clip_algorithm == "value" and gradient_clip_val is not None:
            clipped = torch.stack([g.abs().max() for g in grads]).max() > gradient_clip_val
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            after = get_total_norm(grads)
        elif gradient_clip_val is not None:
            # What Lightning's precision plugins call for norm clipping (AMP has unscaled the
            # gradients by now), on the norm we already have instead of a second pass.
            clip_grads_with_norm_(params, gradient_clip_val, before)
            after = before * (gradient_clip_val / (before + 1e-6)).clamp(max=1.0)
            clipped = before > gradient_clip_val
        else:
            after, clipped = before, torch.zeros((), dtype=torch.bool, device=before.device)
        step = torch.stack([before, after, clipped.float()]).detach()  # (3,)
        if self._clip_stats is None or self._clip_stats.device != step.device:
            self._clip_stats = torch.zeros(6, device=step.device)  # sums (3), maxima (2), count
        stats = self._clip_stats
        stats[:3] += step
        stats[3:5] = torch.maximum(stats[3:5], step[:2])
        stats[5] += 1

    def on_train_epoch_end(self) -> None:
        """Send the epoch's training loss and clipping statistics to the loggers.

        Sent here, not through Lightning's epoch logging: Lightning sends epoch metrics only after
        the `on_train_epoch_end` hooks, and the checkpoint callback saves in its hook, which runs
        after this one. A process killed between the two would resume past an epoch whose points
        never reached MLflow. Under DDP the gradients are already averaged over ranks when they
        are clipped, so every rank holds the same statistics; the loggers write on rank zero.
        """
        metrics: dict[str, float] = {}
        loss = self.trainer.callback_metrics.get("train/loss")  # the epoch mean, reduced
        if loss is not None:
            metrics["train/loss"] = float(loss)
        stats, self._clip_stats = self._clip_stats, None
        if stats is not None and stats[5] > 0:
            mean = (stats[:3] / stats[5]).tolist()
            metrics |= {
                "grad/norm_pre_clip": mean[0],
                "grad/norm_post_clip": mean[1],
                "grad/clipped": mean[2],
                "grad/norm_pre_clip_max": float(stats[3]),
                "grad/norm_post_clip_max": float(stats[4]),
            }
        if metrics:
            for logger in self.loggers:  # at the step Lightning gives epoch metrics
                logger.log_metrics(metrics, step=self.trainer.global_step - 1)

    def configure_optimizers(self) -> Any:
        """AdamW (or SGD with momentum) with an optional per-epoch exponential lr decay."""
        optimizer: Optimizer
        if self.optim.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                self.parameters(),
                lr=self.optim.lr,
                momentum=0.9,
                weight_decay=self.optim.weight_decay,
            )
        else:
            optimizer = torch.optim.AdamW(
                self.parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay
            )
        if self.optim.lr_decay == 1.0:
            return optimizer
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.optim.lr_decay)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
