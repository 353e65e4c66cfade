"""Official M4 interval metrics: MSIS and ACD of a prediction interval [L, U].

Definitions from the competition (`data/m4-hourly/SOURCE.md`, Makridakis et al. 2020, and
`Benchmarks and Evaluation.R` in Mcompetitions/M4-methods), with alpha = 0.05 for 95% intervals:

- MSIS of one series: the mean over the H steps of
  (U - L) + (2 / alpha) (L - y) [y < L] + (2 / alpha) (y - U) [y > U],
  divided by MASE's in-sample scale (mean |x_t - x_(t-m)| over the training part); a method's
  MSIS is the mean over series.
- ACD: |coverage - (1 - alpha)|, coverage being the share of all test points (all series, all
  steps) inside [L, U].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from stackcast.training.metrics import FloatArray, mase_scale

ALPHA = 0.05  # M4's intervals are 95%


def _same_shape(**arrays: npt.ArrayLike) -> dict[str, FloatArray]:
    out = {name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()}
    shapes = {name: a.shape for name, a in out.items()}
    if len(set(shapes.values())) != 1 or any(a.ndim != 2 for a in out.values()):
        raise ValueError(f"expected equal shapes (n_series, H), got {shapes}")
    return out


def msis(
    insample: Sequence[npt.ArrayLike],
    y: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    m: int,
    alpha: float = ALPHA,
) -> FloatArray:
    """Per-series mean scaled interval score, shape (n_series,).

    Args:
        insample: the training part of each series (lengths may differ), n_i > m.
        y: actuals, shape (n_series, H).
        lower: the interval's lower bounds, shape (n_series, H).
        upper: the interval's upper bounds, shape (n_series, H).
        m: seasonal period of the in-sample scale (24 for Hourly).
        alpha: 1 - the interval's nominal coverage.

    Raises:
        ValueError: shapes differ, a lower bound above its upper bound, alpha outside (0, 1).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    a = _same_shape(y=y, lower=lower, upper=upper)
    ya, lo, up = a["y"], a["lower"], a["upper"]
    if ya.shape[0] != len(insample):
        raise ValueError(f"{len(insample)} in-sample series for {ya.shape[0]} test series")
    if (lo > up).any():
        raise ValueError("a lower bound lies above its upper bound")
    penalty = (2.0 / alpha) * ((lo - ya) * (ya < lo) + (ya - up) * (ya > up))
    scale = np.array([mase_scale(x, m) for x in insample])
    result: FloatArray = np.mean(up - lo + penalty, axis=1) / scale
    return result


def coverage(y: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> float:
    """The share of all points (every series, every step) with lower <= y <= upper."""
    a = _same_shape(y=y, lower=lower, upper=upper)
    return float(np.mean((a["lower"] <= a["y"]) & (a["y"] <= a["upper"])))


def acd(
    y: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike, alpha: float = ALPHA
) -> float:
    """Absolute coverage difference: |coverage - (1 - alpha)|."""
    return abs(coverage(y, lower, upper) - (1.0 - alpha))
