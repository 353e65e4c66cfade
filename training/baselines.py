"""The M4 competition's statistical benchmarks Naive1, sNaive and Naive2, in numpy.

They follow the competition's R script `Benchmarks and Evaluation.R` (repository
Mcompetitions/M4-methods), which produced the published benchmark scores: the seasonality test
is its `SeasonalityTest` (R's `acf`) and the seasonal indices are those of R's
`decompose(type = "multiplicative")`. The Python script `ML_benchmarks.py` in the same repository
has a slightly different test (ACF at lag 1 not squared) and moving average; it was used only for
the MLP/RNN benchmarks, so it is not followed here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_TCRIT = 1.645  # normal quantile: a 90% two-sided test on |r_m|


def _acf(x: FloatArray, max_lag: int) -> FloatArray:
    """Sample autocorrelations at lags 1..max_lag, as R's `acf` (mean removed, divisor n).

    Returns:
        Shape (max_lag,); NaN everywhere for a constant series (zero variance).
    """
    d = x - x.mean()
    denom = float(d @ d)
    # lag k: sum_t d_t d_{t+k}, t = 0 .. n-1-k; same normaliser for every lag
    num = np.array([float(d[: len(d) - k] @ d[k:]) for k in range(1, max_lag + 1)])
    if denom == 0.0:
        return np.full(max_lag, np.nan)
    return num / denom


def is_seasonal(x: npt.ArrayLike, m: int) -> bool:
    """The M4 seasonality test: is the autocorrelation at lag m significant (90%, two-sided)?

    Seasonal when |r_m| > 1.645 * sqrt((1 + 2 * sum_{k<m} r_k^2) / n). As in the R code, a
    series shorter than 3 m is never seasonal, and neither is one where R's default
    `acf(lag.max = floor(10 log10 n))` stops before lag m (for m = 24: n < 251).

    Args:
        x: the in-sample series, shape (n,).
        m: seasonal period (24 for Hourly).

    Returns:
        True when the series counts as seasonal.
    """
    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[0]
    if m <= 1 or n < 3 * m:
        return False
    if math.floor(10 * math.log10(n)) < m:  # R's acf would not reach lag m: NA -> not seasonal
        return False
    r = _acf(arr, m)  # (m,): r_1 .. r_m
    limit = _TCRIT / math.sqrt(n) * math.sqrt(1.0 + 2.0 * float(np.sum(r[: m - 1] ** 2)))
    test = abs(float(r[m - 1])) > limit
    return bool(test)  # NaN (constant series) compares False


def seasonal_indices(x: npt.ArrayLike, m: int) -> FloatArray:
    """Multiplicative seasonal indices of classical decomposition, as R's `decompose`.

    The trend is the centred moving average (2 x m for even m, weights 0.5, 1, ..., 1, 0.5 over
    m + 1 points); the index of phase p is the mean of x / trend over the points with
    t % m == p, then all indices are scaled to average 1.

    Args:
        x: the in-sample series, shape (n,), n >= 2 m.
        m: seasonal period.

    Returns:
        Shape (m,); entry p is the index of the time points t (0-based) with t % m == p.
    """
    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[0]
    # 2 x m moving average (m + 1 weights) for even m, plain m-point average for odd m
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(weights) // 2
    trend = np.convolve(arr, weights, mode="valid")  # (n - 2 half,): centres half .. n-1-half
    ratio = arr[half : n - half] / trend
    phases = np.arange(half, n - half) % m
    sums = np.bincount(phases, weights=ratio, minlength=m)
    counts = np.bincount(phases, minlength=m)
    figure: FloatArray = sums / counts
    normalised: FloatArray = figure / figure.mean()
    return normalised


def naive1(insample: Sequence[npt.ArrayLike], h: int) -> FloatArray:
    """Naive1: the last observed value, repeated over the horizon.

    Args:
        insample: one in-sample series per row, lengths may differ.
        h: forecast horizon.

    Returns:
        Forecasts of shape (n_series, h).
    """
    last = np.array([np.asarray(x, dtype=np.float64)[-1] for x in insample])  # (n_series,)
    return np.repeat(last[:, None], h, axis=1)


def naive1_interval(
    insample: Sequence[npt.ArrayLike], h: int, level: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Naive1's random-walk prediction interval, as M4 scored its Naive row (R `forecast::naive`).

    Step k's interval is the last value +- z sigma sqrt(k), where sigma is the root mean square
    of the series' one-step differences and z the normal quantile of (1 + level) / 2.

    Args:
        insample: one in-sample series per row (at least two points), lengths may differ.
        h: forecast horizon.
        level: nominal coverage, in (0, 1).

    Returns:
        (lower, upper), each of shape (n_series, h).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    z = NormalDist().inv_cdf((1 + level) / 2)
    sigma = np.array([np.sqrt(np.mean(np.diff(np.asarray(x, np.float64)) ** 2)) for x in insample])
    half = z * sigma[:, None] * np.sqrt(np.arange(1, h + 1))[None, :]
    point = naive1(insample, h)
    return point - half, point + half


def seasonal_naive(insample: Sequence[npt.ArrayLike], h: int, m: int) -> FloatArray:
    """Seasonal naive (sNaive): the last m observations, repeated over the horizon.

    Args:
        insample: one in-sample series per row.
        h: forecast horizon.
        m: seasonal period; m <= 1 gives Naive1.

    Returns:
        Forecasts of shape (n_series, h).
    """
    if m <= 1:
        return naive1(insample, h)
    rows = [np.resize(np.asarray(x, dtype=np.float64)[-m:], h) for x in insample]  # cycles
    return np.stack(rows).reshape(len(rows), h)


def naive2(insample: Sequence[npt.ArrayLike], h: int, m: int) -> FloatArray:
    """Naive2: Naive1 on the seasonally adjusted series, re-seasonalised.

    Series that fail `is_seasonal` get plain Naive1.

    Args:
        insample: one in-sample series per row.
        h: forecast horizon.
        m: seasonal period.

    Returns:
        Forecasts of shape (n_series, h).
    """
    out = np.empty((len(insample), h), dtype=np.float64)
    for i, x in enumerate(insample):
        arr = np.asarray(x, dtype=np.float64)
        n = arr.shape[0]
        if not is_seasonal(arr, m):
            out[i] = arr[-1]
            continue
        si = seasonal_indices(arr, m)  # (m,)
        level = arr[-1] / si[(n - 1) % m]  # last seasonally adjusted value
        out[i] = level * si[np.arange(n, n + h) % m]  # future t = n .. n+h-1 (0-based)
    return out
