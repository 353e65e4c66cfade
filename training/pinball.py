"""The pinball (multi-quantile) loss: the quantile regression loss of Koenker & Bassett (1978).

For level q and error e = y - f: q e when e >= 0 (under-forecast), (q - 1) e when e < 0, so its
minimiser over f is the q-quantile of y. Averaged over batch, horizon and levels.
"""

from __future__ import annotations

import torch


def pinball_loss(pred: torch.Tensor, y: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss of quantile forecasts.

    Args:
        pred: quantile forecasts, (B, H, Q).
        y: actuals, (B, H).
        levels: the Q quantile levels, each in (0, 1).

    Raises:
        ValueError: shapes disagree or a level is outside (0, 1).
    """
    if pred.shape[:-1] != y.shape or pred.shape[-1] != levels.numel():
        raise ValueError(
            f"pred {tuple(pred.shape)} must be y {tuple(y.shape)} x {levels.numel()} levels"
        )
    if ((levels <= 0) | (levels >= 1)).any():
        raise ValueError(f"quantile levels must be in (0, 1), got {levels.tolist()}")
    error = y.unsqueeze(-1) - pred
    return torch.maximum(levels * error, (levels - 1) * error).mean()
