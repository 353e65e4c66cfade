"""Quantile forecasts that never cross, by construction (not by sorting after the fact).

A quantile head emits one raw column per quantile level (levels ascending). `monotone` keeps
the anchor column (the median) as it is and builds the others outwards from it with cumulative
softplus steps, each >= 0, so every output is non-decreasing along the quantile axis for any
raw values, and gradients reach every column.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def monotone(raw: torch.Tensor, anchor: int) -> torch.Tensor:
    """Raw head outputs (..., Q) -> quantiles (..., Q), non-decreasing along the last axis.

    Args:
        raw: one column per quantile level, levels ascending.
        anchor: the column kept as it is (the median's); the others are it plus (above) or
            minus (below) cumulative softplus steps.

    Raises:
        IndexError: `anchor` is not a column of `raw`.
    """
    q = raw.shape[-1]
    if not 0 <= anchor < q:
        raise IndexError(f"anchor {anchor} outside the {q} quantile columns")
    middle = raw[..., anchor : anchor + 1]
    above = middle + torch.cumsum(F.softplus(raw[..., anchor + 1 :]), dim=-1)
    below = middle - torch.cumsum(F.softplus(raw[..., :anchor].flip(-1)), dim=-1).flip(-1)
    return torch.cat([below, middle, above], dim=-1)
