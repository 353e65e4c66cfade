"""`auto` config values, resolved from the data: frequency defaults, windows, validation.

A key set to `auto` (or, for a long-format file, left out) is chosen here after the data is
read; an explicit value always wins. Each choice comes with its reason, printed by `train`
and logged to MLflow (params `auto.<key>`, and the run's description).

The rules, in order:
- `data.freq`: inferred from `ds` (bundled M4 sets: their own frequency).
- `model.horizon`, `model.input_size`, `model.patch_size`, `data.seasonality`: the frequency's
  row of the defaults table (`training/frequency.py`); a patch that does not divide an
  explicit window becomes the largest divisor below it.
- `model.season_length`: the table's season if seasonal naive with it beats Naive1 on the
  last `horizon` points of the series (mean sMAPE), else 1 (the network then learns the
  deviation from the last value).
- `data.val_step`: the horizon. `data.val_windows`: enough rolling origins for about
  `TARGET_VAL_WINDOWS` validation windows in all (ceil(64 / #series)), but no more than keep
  25% of the shortest series for validation, and at least 1.
- `model.padding`: `mask` when some series is shorter than one full training window plus
  its validation span (windows are then padded), else `season`.
- `registry.metric`: `val/owa` when Naive2's validation sMAPE and MASE are both positive
  (OWA is a ratio to them), else `val/mase`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from stackcast.models import ModelConfig
from stackcast.training.baselines import naive1, naive2, seasonal_naive
from stackcast.training.config import Choice, DataConfig, TrainConfig
from stackcast.training.datamodule import min_series_length, validation_span
from stackcast.training.frequency import Frequency
from stackcast.training.frequency_defaults import FrequencyDefaults, defaults_for
from stackcast.training.metrics import mase_scale, smape

AUTO = "auto"
TARGET_VAL_WINDOWS = 64  # validation windows wanted in all, for a stable selection metric
MAX_VAL_SHARE = 0.25  # of the shortest series' points that validation may take
# Keys that may be `auto`; for a long-format file, leaving one out means `auto` too.
AUTO_KEYS = (
    "data.freq",
    "model.horizon",
    "data.seasonality",
    "model.season_length",
    "model.input_size",
    "model.patch_size",
    "data.val_step",
    "data.val_windows",
    "model.padding",
    "registry.metric",
)


class AutoConfigError(ValueError):
    """`auto` cannot decide a key from this data; the message says what to set."""


def auto_keys(tree: dict[str, Any]) -> list[str]:
    """The keys of `tree` to resolve: set to `auto`, or left out when the data is a file."""
    from_file = tree.get("data", {}).get("source") == "file"
    keys = []
    for key in AUTO_KEYS:
        section, name = key.split(".")
        values = tree.get(section, {})
        if values.get(name) == AUTO or (from_file and name not in values):
            keys.append(key)
    return keys


def resolve(
    tree: dict[str, Any], frequency: Frequency, series: dict[str, np.ndarray]
) -> tuple[TrainConfig, list[Choice]]:
    """Replace the `auto` keys of `tree` by values that fit `series`; validate the result.

    Raises:
        AutoConfigError: a key cannot be decided (e.g. integer `ds` without `data.freq`),
            or the horizon leaves no history in the longest series.
        pydantic.ValidationError: an explicit value is invalid.
    """
    pending = auto_keys(tree)
    tree = {section: dict(values) for section, values in tree.items()}
    for section in ("model", "data", "registry"):
        tree.setdefault(section, {})
    choices: list[Choice] = []

    def choose(key: str, rule: Callable[[], tuple[Any, str]]) -> Any:
        section, name = key.split(".")
        if key in pending:
            value, reason = rule()
            tree[section][name] = value
            choices.append(Choice(key, value, reason))
        return tree[section].get(name, _default(key))

    lengths = np.array([len(v) for v in series.values()])
    choose("data.freq", lambda: (frequency.name, f"{frequency.describe()}, from the data"))
    table = _Table(frequency, pending)  # read only if a key needs it (integer ds: none)
    horizon = choose("model.horizon", lambda: (table().horizon, f"{frequency.name} default"))
    if horizon >= lengths.max():
        raise AutoConfigError(
            f"model.horizon={horizon} leaves no history: the longest series has "
            f"{lengths.max()} points; use a horizon below {lengths.max() // 2}"
        )
    choose(
        "data.seasonality",
        lambda: (table().metric_seasonality, f"M4's metric seasonality for {frequency.name}"),
    )
    season = choose("model.season_length", lambda: _season(series, table().season_length, horizon))
    window = choose("model.input_size", lambda: (table().input_size, f"{frequency.name} default"))
    if season is not None and season > window and "model.input_size" in pending:
        patch = table().patch_size
        window = tree["model"]["input_size"] = math.ceil(2 * season / patch) * patch
    choose("model.patch_size", lambda: _patch(window, table().patch_size))
    step = choose("data.val_step", lambda: (horizon, "the horizon: targets tile the series' end"))
    choose("data.val_windows", lambda: _val_windows(lengths, step))
    choose("model.padding", lambda: _padding(tree, lengths))
    choose("registry.metric", lambda: _metric(series, horizon, tree["data"]["seasonality"]))
    config = TrainConfig.model_validate(tree)
    return config, choices


def _default(key: str) -> Any:
    section, name = key.split(".")
    fields = TrainConfig.model_fields[section].annotation.model_fields  # type: ignore[union-attr]
    return fields[name].default


class _Table:
    """The frequency's row of the defaults table, looked up on first use."""

    def __init__(self, frequency: Frequency, pending: list[str]) -> None:
        self.frequency, self.pending = frequency, pending

    def __call__(self) -> FrequencyDefaults:
        """The row, or an error naming what to set when the frequency has none."""
        try:
            return defaults_for(self.frequency)
        except ValueError as error:
            keys = [k for k in self.pending if k not in ("data.freq", "registry.metric")]
            raise AutoConfigError(f"{error}; or set explicitly: {', '.join(keys)}") from None


def _season(series: dict[str, np.ndarray], m: int, horizon: int) -> tuple[int, str]:
    """`m` if seasonal naive beats Naive1 on each series' last `horizon` points, else 1."""
    if m <= 1:
        return 1, "no seasonal cycle at this frequency: the last value is the baseline"
    usable = [v for v in series.values() if len(v) >= m + horizon]
    if not usable:
        return 1, f"no series has {m + horizon} points to check a season of {m} on"
    insample = [v[:-horizon] for v in usable]
    y = np.stack([v[-horizon:] for v in usable]).astype(np.float64)
    seasonal = float(np.nanmean(smape(y, seasonal_naive(insample, horizon, m))))
    last = float(np.nanmean(smape(y, naive1(insample, horizon))))
    verdict = f"sNaive({m}) sMAPE {seasonal:.2f} vs Naive1 {last:.2f} on the last {horizon} points"
    return (m, verdict) if seasonal < last else (1, verdict)


def _patch(window: int, preferred: int) -> tuple[int, str]:
    divisors = [p for p in range(1, preferred + 1) if window % p == 0]
    patch = divisors[-1]
    steps = window // patch
    return patch, f"{steps} recurrent steps of {patch} points over the {window}-point window"


def _val_windows(lengths: np.ndarray, step: int) -> tuple[int, str]:
    wanted = math.ceil(TARGET_VAL_WINDOWS / len(lengths))
    room = max(1, int(MAX_VAL_SHARE * lengths.min()) // step)
    windows = max(1, min(wanted, room))
    return windows, (
        f"{windows * len(lengths)} validation windows over {len(lengths)} series "
        f"(aim {TARGET_VAL_WINDOWS}; at most {MAX_VAL_SHARE:.0%} of the shortest series)"
    )


def _padding(tree: dict[str, Any], lengths: np.ndarray) -> tuple[str, str]:
    m = tree["model"]
    probe = ModelConfig(
        input_size=m["input_size"], horizon=m["horizon"], patch_size=m.get("patch_size", 1)
    )
    d = tree["data"]
    span = validation_span(probe.horizon, d.get("val_windows", 1), d.get("val_step"))
    full = min_series_length(probe, d.get("val_windows", 1), d.get("val_step")) + probe.horizon
    short = int((lengths < full).sum())
    if short:
        return "mask", (
            f"{short} series are shorter than a full window plus validation ({full} points): "
            "their windows are NaN-padded and the model sees a mask channel"
        )
    return "season", f"every series has a full window plus its {span} validation points"


def _metric(series: dict[str, np.ndarray], horizon: int, m: int) -> tuple[str, str]:
    insample = [v[:-horizon].astype(np.float64) for v in series.values()]
    y = np.stack([v[-horizon:] for v in series.values()]).astype(np.float64)
    forecast = naive2(insample, horizon, m)
    s = float(np.nanmean(smape(y, forecast)))
    scales = np.array([mase_scale(x, m if len(x) > m else 1) for x in insample])
    mase = float(np.mean(np.abs(y - forecast).mean(axis=1) / np.maximum(scales, 1e-8)))
    if s > 0 and mase > 0:
        return "val/owa", f"Naive2 scores sMAPE {s:.2f}, MASE {mase:.3f}: OWA is defined"
    return "val/mase", "Naive2 is exact on validation, so OWA (a ratio to it) is not defined"


def resolve_from_data(tree: dict[str, Any]) -> tuple[TrainConfig, list[Choice]]:
    """Read the data `tree` names, then `resolve` its `auto` keys against it."""
    from stackcast.training.train import load_with_frequency  # the training recipe's loader

    data = {k: v for k, v in tree.get("data", {}).items() if v != AUTO}
    loaded = load_with_frequency(DataConfig.model_validate(data))
    return resolve(tree, loaded.frequency, loaded.series)
