"""Histories of any accepted length -> the fixed-size windows the model reads."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def to_window(history: Sequence[float], input_size: int, season_length: int) -> np.ndarray:
    """The model's input window for one history, shape (input_size,) float32.

    Longer histories use their last `input_size` points. Shorter ones are left-padded by
    repeating their own seasonal cycle backwards, phase-aligned (the point padded `k` steps
    before the first observation takes the value `season_length` multiples later), so the
    window keeps the series' level and daily shape; with no seasonality the first value repeats.
    Requires at least `season_length` points.
    """
    values = np.asarray(history, dtype=np.float32)[-input_size:]
    missing = input_size - values.shape[0]
    if missing == 0:
        return values
    period = max(season_length, 1)
    if values.shape[0] < period:
        raise ValueError(f"history of {values.shape[0]} points is shorter than one season")
    phase = np.arange(-missing, 0) % period  # (missing,): same phase, first season
    return np.concatenate([values[phase], values])


def to_windows(
    histories: Sequence[Sequence[float]], input_size: int, season_length: int
) -> np.ndarray:
    """Stack windows of many histories: (n_series, input_size) float32."""
    return np.stack([to_window(h, input_size, season_length) for h in histories])
