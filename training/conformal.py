"""Split-conformal prediction intervals per horizon step (Vovk et al. 2005; Lei et al. 2018).

Given the absolute out-of-sample errors |y - f| of n calibration windows (the rolling
validation windows, never the test set), the half-width for level a at horizon step h is the
ceil((n + 1) a)-th smallest error at that step. For a new window exchangeable with the
calibration ones, f +- that half-width covers y with probability >= a (and < a + 1 / (n + 1)
without ties): the finite-sample guarantee of split conformal prediction. Each horizon step
gets its own half-width, since errors grow with the lead time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _fewest_windows(level: float) -> int:
    """The smallest n with ceil((n + 1) level) <= n: a bounded interval at `level`."""
    n = 1
    while math.ceil((n + 1) * level) > n:
        n += 1
    return n


def conformal_halfwidths(errors: npt.ArrayLike, levels: Sequence[float]) -> FloatArray:
    """Half-widths per level and horizon step: (len(levels), H).

    Args:
        errors: absolute errors of the calibration windows, (n, H), finite and >= 0.
        levels: nominal coverages, each in (0, 1).

    Raises:
        ValueError: errors not (n, H) of finite non-negative values; a level outside (0, 1);
            too few windows for a level (ceil((n + 1) a) > n: the interval would be unbounded).
    """
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] == 0:
        raise ValueError(f"errors must have shape (n_windows, H), got {e.shape}")
    if not np.isfinite(e).all() or (e < 0).any():
        raise ValueError("errors must be finite absolute errors (>= 0)")
    n = e.shape[0]
    ordered = np.sort(e, axis=0)
    widths = []
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"levels must be in (0, 1), got {level}")
        rank = math.ceil((n + 1) * level)
        if rank > n:
            raise ValueError(
                f"{n} calibration windows are too few for level {level}: it needs at least "
                f"{_fewest_windows(level)}"
            )
        widths.append(ordered[rank - 1])
    return np.stack(widths)
