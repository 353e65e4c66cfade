"""Official M4 point-forecast metrics: sMAPE, MASE and OWA (relative to Naive2).

Definitions follow the competition's evaluation code (`Benchmarks and Evaluation.R` in
Mcompetitions/M4-methods) and `data/m4-hourly/SOURCE.md` (Weekly: `data/m4-weekly/SOURCE.md`).
Per-series values are means over the horizon; a method's score is the mean over series, and OWA
is computed from those means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from stackcast.training.baselines import naive2
from stackcast.training.m4 import M4Subset

FloatArray = npt.NDArray[np.float64]

COLUMNS = ("sMAPE", "MASE", "OWA")

# Hourly rows of the competition's Evaluation_and_Ranks sheet: (sMAPE, MASE, OWA).
PUBLISHED_M4_HOURLY: dict[str, tuple[float, float, float]] = {
    "Naive1": (43.003, 11.608, 3.593),
    "sNaive": (13.912, 1.193, 0.627),
    "Naive2": (18.383, 2.395, 1.000),
    "SES": (18.094, 2.385, 0.990),
    "Theta": (18.138, 2.455, 1.006),
    "MLP benchmark": (13.842, 2.607, 0.921),
    "RNN benchmark": (14.698, 3.048, 1.036),
    "#118 Smyl, ES-RNN hybrid (1st overall)": (9.328, 0.893, 0.440),
    "#237 (3rd overall)": (9.611, 0.873, 0.444),
    "#238 (best Hourly OWA)": (8.913, 0.801, 0.410),
}

# Weekly rows of the same sheet: (sMAPE, MASE, OWA). M4 scored Weekly with m = 1, so Naive1,
# sNaive and Naive2 are one forecast (the last value) and share a row there.
_WEEKLY_NAIVE = (9.161, 2.777, 1.000)
PUBLISHED_M4_WEEKLY: dict[str, tuple[float, float, float]] = {
    "Naive1": _WEEKLY_NAIVE,
    "sNaive": _WEEKLY_NAIVE,
    "Naive2": _WEEKLY_NAIVE,
    "SES": (9.012, 2.685, 0.975),
    "Theta": (9.093, 2.637, 0.971),
    "MLP benchmark": (21.349, 13.568, 3.608),
    "RNN benchmark": (15.220, 5.132, 1.755),
    "#118 Smyl, ES-RNN hybrid (1st overall)": (7.817, 2.356, 0.851),
    "#36 Petropoulos & Svetunkov": (6.726, 2.133, 0.751),
    "#235 Darin & Stellwagen (best Weekly OWA)": (6.582, 2.107, 0.739),
}

PUBLISHED_M4: dict[M4Subset, dict[str, tuple[float, float, float]]] = {
    "hourly": PUBLISHED_M4_HOURLY,
    "weekly": PUBLISHED_M4_WEEKLY,
}

# 95% prediction intervals, (MSIS, ACD), from the same sheet. Stored for the interval metrics;
# nothing prints them yet.
PUBLISHED_M4_INTERVALS: dict[M4Subset, dict[str, tuple[float, float]]] = {
    "hourly": {
        "Naive": (71.245, 0.011),
        "ETS": (17.487, 0.001),
        "#118 Smyl, ES-RNN hybrid": (7.928, 0.040),
        "ARIMA": (7.538, 0.001),
        "#238 Doornik, Hendry & Castle (best Hourly MSIS)": (6.139, 0.002),
    },
    "weekly": {
        "Naive": (26.358, 0.001),
        "ETS": (20.386, 0.014),
        "ARIMA": (19.575, 0.005),
        "#118 Smyl, ES-RNN hybrid": (22.034, 0.021),
        "#238 Doornik, Hendry & Castle": (16.469, 0.053),
        "#36 Petropoulos & Svetunkov (best Weekly MSIS)": (16.200, 0.012),
    },
}


def _as_2d(a: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n_series, H), got {arr.shape}")
    return arr


def smape(y: npt.ArrayLike, f: npt.ArrayLike) -> FloatArray:
    """Per-series symmetric MAPE, in percent (0 to 200).

    A step where both the actual and the forecast are 0 gives NaN, as in the official code.

    Args:
        y: actuals, shape (n_series, H).
        f: forecasts, shape (n_series, H).

    Returns:
        Shape (n_series,): mean over the H steps of 200 |y - f| / (|y| + |f|).
    """
    ya, fa = _as_2d(y, "y"), _as_2d(f, "f")
    if ya.shape != fa.shape:
        raise ValueError(f"y {ya.shape} and f {fa.shape} differ in shape")
    result: FloatArray = np.mean(200.0 * np.abs(ya - fa) / (np.abs(ya) + np.abs(fa)), axis=1)
    return result


def mase_scale(insample: npt.ArrayLike, m: int) -> float:
    """MASE denominator: mean |x_t - x_(t-m)| over t = m+1 .. n of one series' training part."""
    arr = np.asarray(insample, dtype=np.float64)
    return float(np.mean(np.abs(arr[m:] - arr[:-m])))


def mase(
    insample: Sequence[npt.ArrayLike], y: npt.ArrayLike, f: npt.ArrayLike, m: int
) -> FloatArray:
    """Per-series mean absolute scaled error.

    Args:
        insample: the training part of each series (lengths may differ), n_i > m.
        y: actuals, shape (n_series, H).
        f: forecasts, shape (n_series, H).
        m: seasonal period of the scaling naive forecast (24 for Hourly).

    Returns:
        Shape (n_series,): mean |y - f| over the H steps divided by the in-sample seasonal-naive
        mean absolute error, mean |x_t - x_(t-m)| over t = m+1 .. n (training part only).
    """
    ya, fa = _as_2d(y, "y"), _as_2d(f, "f")
    if ya.shape != fa.shape or ya.shape[0] != len(insample):
        raise ValueError(f"shapes differ: {len(insample)} series, y {ya.shape}, f {fa.shape}")
    scale = np.array([mase_scale(x, m) for x in insample])  # (n_series,)
    result: FloatArray = np.mean(np.abs(ya - fa), axis=1) / scale
    return result


def owa(smape_value: float, mase_value: float, smape_naive2: float, mase_naive2: float) -> float:
    """Overall weighted average: mean of sMAPE and MASE, each relative to Naive2.

    Args:
        smape_value: the method's sMAPE, averaged over all series.
        mase_value: the method's MASE, averaged over all series.
        smape_naive2: Naive2's sMAPE on the same series.
        mase_naive2: Naive2's MASE on the same series.

    Returns:
        0.5 * (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2); Naive2 itself scores 1.
    """
    return 0.5 * (smape_value / smape_naive2 + mase_value / mase_naive2)


def score_table(
    insample: Sequence[npt.ArrayLike],
    y_test: npt.ArrayLike,
    forecasts: Mapping[str, npt.ArrayLike],
    m: int,
) -> pd.DataFrame:
    """Score forecasts the M4 way: sMAPE, MASE and OWA per method.

    The OWA reference is always Naive2 computed here from `insample`; a "Naive2" row is added
    when `forecasts` has none.

    Args:
        insample: the training part of each series.
        y_test: actuals, shape (n_series, H).
        forecasts: method name -> forecasts of shape (n_series, H).
        m: seasonal period.

    Returns:
        One row per method (index "method", in `forecasts` order, then Naive2 if added),
        columns sMAPE, MASE, OWA.
    """
    y = _as_2d(y_test, "y_test")
    reference = naive2(insample, y.shape[1], m)  # (n_series, H)
    smape_ref = float(np.mean(smape(y, reference)))
    mase_ref = float(np.mean(mase(insample, y, reference, m)))
    methods: dict[str, npt.ArrayLike] = dict(forecasts)
    methods.setdefault("Naive2", reference)
    rows = []
    for f in methods.values():
        s = float(np.mean(smape(y, f)))
        q = float(np.mean(mase(insample, y, f, m)))
        rows.append((s, q, owa(s, q, smape_ref, mase_ref)))
    index = pd.Index(list(methods), name="method")
    return pd.DataFrame(rows, index=index, columns=list(COLUMNS))


def with_published(table: pd.DataFrame, subset: M4Subset = "hourly") -> pd.DataFrame:
    """Append the published rows of one M4 subset to a `score_table` result, side by side.

    Args:
        table: output of `score_table` (index "method", columns sMAPE, MASE, OWA).
        subset: the M4 subset `table` was scored on ("hourly" or "weekly").

    Returns:
        The rows of `table` then those of `PUBLISHED_M4[subset]`, with a `source` column
        ("ours" or "published M4"); a method may appear twice, once per source.

    Raises:
        ValueError: an unknown subset.
    """
    if subset not in PUBLISHED_M4:
        raise ValueError(
            f"no published M4 table for '{subset}'; allowed: {', '.join(PUBLISHED_M4)}"
        )
    rows = PUBLISHED_M4[subset]
    ours = table.loc[:, list(COLUMNS)].assign(source="ours")
    published = pd.DataFrame(
        list(rows.values()),
        index=pd.Index(list(rows), name="method"),
        columns=list(COLUMNS),
    ).assign(source="published M4")
    combined = pd.concat([ours, published])
    combined.index.name = "method"
    return combined
