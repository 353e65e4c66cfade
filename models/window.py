"""The one window policy: a history of any accepted length -> the model's input window.

Training windows, `stackcast evaluate` and the HTTP service all call `model_input(s)`, so a
history reaches the network the same way on every path:

- longer than `input_size`: its last `input_size` points;
- shorter, `padding="mask"`: left-padded with NaN; the model reads NaN as "not observed"
  (scaling ignores it, a 0/1 observed channel goes in beside the values);
- shorter, `padding="season"`: left-padded with its own seasonal cycle, phase-aligned (the
  point padded `k` steps before the first observation takes the value `season_length`
  multiples later), so the window keeps the series' level and seasonal shape;
- shorter than `min_history(config)` points: refused (`ShortHistoryError`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from stackcast.models.config import ModelConfig


class ShortHistoryError(ValueError):
    """A history has fewer points than the model needs (`min_history`)."""


def min_history(config: ModelConfig) -> int:
    """The fewest points a history needs: one season (the seasonal-naive part reads it)."""
    return config.season_length or 1


def model_input(history: npt.ArrayLike, config: ModelConfig) -> np.ndarray:
    """The model's input window for one history: (input_size,) float32.

    Raises:
        ShortHistoryError: fewer than `min_history(config)` points.
    """
    values = np.asarray(history, dtype=np.float32)[-config.input_size :]
    need = min_history(config)
    if values.shape[0] < need:
        raise ShortHistoryError(
            f"history of {values.shape[0]} points is shorter than the {need} the model needs "
            f"(one season of {config.season_length})"
            if config.season_length
            else f"history of {values.shape[0]} points: the model needs at least {need}"
        )
    missing = config.input_size - values.shape[0]
    if missing == 0:
        return values
    if config.padding == "mask":
        return np.concatenate([np.full(missing, np.nan, dtype=np.float32), values])
    period = config.season_length or 1
    phase = np.arange(-missing, 0) % period  # (missing,): same phase, first season
    return np.concatenate([values[phase], values])


def model_inputs(histories: Sequence[npt.ArrayLike], config: ModelConfig) -> np.ndarray:
    """Windows of many histories: (n, input_size) float32."""
    if not histories:
        return np.empty((0, config.input_size), dtype=np.float32)
    return np.stack([model_input(h, config) for h in histories])
