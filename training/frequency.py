"""The series' frequency: inferred from `ds` or declared in `data.freq`, checked against the data.

Datetime `ds` are inferred per series (pandas' `infer_freq` on series of 3+ points; a series with
gaps falls back to its most common step and must sit on that step's grid), then the series must
agree. Integer `ds` are "steps" of the most common difference; `data.freq` may name what one step
is (e.g. `hourly`), which no calendar can check. Every series is then checked to lie on its own
regular grid (first stamp to last, anchored at the first stamp): stamps off it are irregular
spacing, stamps missing from it are gaps (`data.py` handles those).

The defaults a frequency implies (season length, windows, horizon) are in `frequency_defaults.py`
(a table is a job of its own, and this file is long enough).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast, get_args

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from stackcast.training.data_errors import (
    FrequencyMismatchError,
    IrregularSpacingError,
    MixedFrequencyError,
    UndecidableFrequencyError,
    UnsupportedFrequencyError,
)

FrequencyName = Literal[
    "minutely",
    "hourly",
    "daily",
    "business_daily",
    "weekly",
    "monthly",
    "quarterly",
    "yearly",
    "steps",
]
FREQUENCY_NAMES: tuple[FrequencyName, ...] = get_args(FrequencyName)
_CALENDAR = ("weekly", "monthly", "quarterly", "yearly")
_ALIAS: dict[str, str] = {"hourly": "h", "daily": "D", "business_daily": "B", "weekly": "W-SUN"}
_ALIAS |= {"monthly": "MS", "quarterly": "QS-JAN", "yearly": "YS-JAN"}
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MINUTES = re.compile(r"(\d+)min")
_UNIT_NAME: dict[str, FrequencyName] = {"M": "monthly", "Q": "quarterly", "Y": "yearly"}
_MAX_EXAMPLES = 5
_SHOWN = 3  # offending rows shown per series
_ROWS = "rows 0-based, header not counted"


@dataclass(frozen=True)
class Frequency:
    """A frequency the series share, and how to regenerate their grid.

    Attributes:
        name: one of `FrequencyName`.
        minutes: the step in minutes for `minutely` (divides 60); None otherwise.
        alias: a pandas offset alias that regenerates the grid ("15min", "h", "D", "B", "W-SUN",
            "MS", "ME", "QS-JAN", "QE-DEC", "YS-JAN", "YE-DEC"); for `steps`, the integer step.
            Weekly, quarterly and yearly series may differ in anchor: the alias is the most
            common one, and each series' grid is anchored at its own first stamp.
        step: for integer `ds`, the difference between consecutive `ds` (also when `data.freq`
            names a calendar frequency for them); None for datetime `ds`.
    """

    name: FrequencyName
    minutes: int | None
    alias: str
    step: int | None = None

    def describe(self) -> str:
        """One line for humans, e.g. "hourly", "15-minute", "weekly (W-SUN)"."""
        if self.name == "steps":
            return f"integer steps of {self.step}"
        text = f"{self.minutes}-minute" if self.name == "minutely" else self.name
        text = text.replace("_", " ")
        if self.name in _CALENDAR:
            text += f" ({self.alias})"
        return text if self.step is None else f"{text} (integer ds, steps of {self.step})"


def _label(freq: Frequency | str) -> str:
    """What series are grouped by in MixedFrequencyError: the frequency without its anchor."""
    if isinstance(freq, str):
        return f"every {freq} (not a supported frequency)"
    return freq.describe().split(" (")[0]


def _listing(parts: list[str]) -> str:
    rest = len(parts) - _MAX_EXAMPLES
    text = "; ".join(parts[:_MAX_EXAMPLES])
    return f"{text}; ... and {rest} more" if rest > 0 else text


def _most_common(values: np.ndarray) -> Any:
    """The most common value; ties go to the smallest (a gap doubles a step, never halves it)."""
    unique, counts = np.unique(values, return_counts=True)  # sorted: argmax takes the smallest
    return unique[np.argmax(counts)]


def _from_alias(alias: str) -> Frequency | None:
    """The supported frequency a pandas alias stands for, or None (e.g. "2h", "s", "BME")."""
    offset = to_offset(alias)
    if isinstance(offset, pd.offsets.Minute):
        return Frequency("minutely", offset.n, offset.freqstr) if 60 % offset.n == 0 else None
    names: list[tuple[type, FrequencyName]] = [
        (pd.offsets.Hour, "hourly"),
        (pd.offsets.Day, "daily"),
        (pd.offsets.BusinessDay, "business_daily"),
        (pd.offsets.Week, "weekly"),
        (pd.offsets.MonthBegin, "monthly"),
        (pd.offsets.MonthEnd, "monthly"),
        (pd.offsets.QuarterBegin, "quarterly"),
        (pd.offsets.QuarterEnd, "quarterly"),
        (pd.offsets.YearBegin, "yearly"),
        (pd.offsets.YearEnd, "yearly"),
    ]
    for cls, name in names:
        if type(offset) is cls and offset.n == 1:
            return Frequency(name, None, offset.freqstr)
    return None


def _anchored_alias(freq: Frequency, first: pd.Timestamp) -> str:
    """The alias of `freq` anchored at a series' first stamp (its weekday, month, month edge)."""
    if freq.name == "weekly":
        return f"W-{_WEEKDAYS[first.dayofweek]}"
    edge = "E" if first.is_month_end and first.day != 1 else "S"
    month = _MONTHS[first.month - 1]
    anchored = {
        "monthly": f"M{edge}",
        "quarterly": f"Q{edge}-{month}",
        "yearly": f"Y{edge}-{month}",
    }
    return anchored.get(freq.name, freq.alias)


def _canonical(alias: str, first: pd.Timestamp) -> str:
    """Pandas' own name for the grid (QE-MAR and QE-DEC are one grid; pandas says QE-DEC)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 announces that infer_freq will return offsets
        found = pd.infer_freq(pd.date_range(first, periods=8, freq=alias))
    return alias if found is None else to_offset(found).freqstr


def _step_alias(stamps: pd.DatetimeIndex) -> str:
    """The alias of a series' most common step: for series with gaps, or only 2 points."""
    step = pd.Timedelta(_most_common(np.diff(stamps.to_numpy())))
    first = stamps[0]
    if step >= pd.Timedelta(days=28):  # calendar: months differ in days, compare month numbers
        months = np.asarray(stamps.year * 12 + stamps.month)
        n_months = int(_most_common(np.diff(months)))
        unit = {1: "M", 3: "Q", 12: "Y"}.get(n_months)
        if unit is None:
            return f"{n_months}MS"
        return _canonical(_anchored_alias(Frequency(_UNIT_NAME[unit], None, ""), first), first)
    if step == pd.Timedelta(days=7):
        return f"W-{_WEEKDAYS[first.dayofweek]}"
    days = (stamps[-1].normalize() - first.normalize()).days
    weekdays_only = bool((stamps.dayofweek < 5).all())
    skips_weekends = np.busday_count(first.date(), stamps[-1].date()) < days
    if step == pd.Timedelta(days=1) and weekdays_only and skips_weekends:
        return "B"
    for unit, size in (("D", pd.Timedelta(days=1)), ("h", pd.Timedelta(hours=1))):
        if step % size == pd.Timedelta(0):
            return unit if step == size else f"{step // size}{unit}"
    return to_offset(step).freqstr


def _series_alias(stamps: pd.DatetimeIndex) -> str:
    """The alias one series (2+ sorted stamps) suggests: pandas' when regular, else its step's."""
    if len(stamps) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = pd.infer_freq(stamps)
        if found is not None:
            return to_offset(found).freqstr
    return _step_alias(stamps)


def _calendar_grid(first: pd.Timestamp, last: pd.Timestamp, name: str, alias: str) -> pd.Index:
    """`date_range` for business-day and calendar grids, vectorized.

    Pandas builds those one stamp at a time (about 10 µs a stamp: minutes for tens of thousands
    of series).
    """
    start, end = first.to_datetime64(), last.to_datetime64()
    if name == "business_daily":
        days = np.arange(start.astype("datetime64[D]"), end.astype("datetime64[D]") + 1)
        days = days[np.is_busday(days)]
    else:
        step = {"monthly": 1, "quarterly": 3, "yearly": 12}[name]
        months = np.arange(start.astype("datetime64[M]"), end.astype("datetime64[M]") + 1, step)
        at_end = alias[1] == "E"  # "ME", "QE-DEC", "YE-DEC": the month's last day
        days = (months + at_end).astype("datetime64[D]") - np.timedelta64(int(at_end), "D")
    return pd.DatetimeIndex(days) + (first - first.normalize())


def series_grid(ds: pd.Series, freq: Frequency) -> pd.Index:
    """The regular grid from a series' first to last stamp, anchored at its first stamp.

    Args:
        ds: the series' stamps, sorted ascending (datetimes, or integers when `freq.step` is set).
        freq: the frequency of the data set.

    Returns:
        Every stamp the series should have; a stamp of `ds` not in it is off the grid.
    """
    first, last = ds.iloc[0], ds.iloc[-1]
    if freq.step is not None:
        return pd.Index(np.arange(int(first), int(last) + 1, freq.step))
    alias = _anchored_alias(freq, first)
    if freq.name == "weekly":
        alias = "7D"  # the same grid from the first stamp, built at once (a tick)
    elif freq.name in ("business_daily", *_CALENDAR[1:]) and first.tz is None:
        return _calendar_grid(first, last, freq.name, alias)
    return pd.date_range(first, last, freq=alias)


def future_stamps(last: pd.Timestamp | int, freq: Frequency, horizon: int) -> list[object]:
    """The `horizon` stamps after a series' `last` one, on its grid (forecasts' `ds`).

    Args:
        last: the series' last stamp (a Timestamp, or an int for integer `ds`).
        freq: the data set's frequency (`infer_frequency`).
        horizon: how many steps ahead.

    Returns:
        `last + 1 step, ..., last + horizon steps`: ints for integer `ds`, else Timestamps
        anchored like the series (its weekday, month edge, time of day).
    """
    if freq.step is not None:
        return [int(last) + k * freq.step for k in range(1, horizon + 1)]
    stamp = pd.Timestamp(last)
    alias = "7D" if freq.name == "weekly" else _anchored_alias(freq, stamp)
    return list(pd.date_range(stamp, periods=horizon + 1, freq=alias)[1:])


def _auto(ds_by_series: Mapping[str, pd.Series]) -> Frequency:
    """Infer the frequency datetime series share (no declared `data.freq`)."""
    sizes = [len(ds) for ds in ds_by_series.values()]
    voters = 3 if max(sizes) >= 3 else 2  # 2-point series vote only when nothing longer does
    votes = {
        uid: _series_alias(pd.DatetimeIndex(ds))
        for uid, ds in ds_by_series.items()
        if len(ds) >= voters
    }
    if not votes:
        raise UndecidableFrequencyError(
            "every series has a single point, so the timestamps do not tell the frequency; "
            "set data.freq (e.g. 'daily')"
        )
    found = {uid: _from_alias(alias) or alias for uid, alias in votes.items()}
    groups: dict[str, list[str]] = {}
    for uid, freq in found.items():
        groups.setdefault(_label(freq), []).append(uid)
    if len(groups) > 1 and voters == 2:
        raise UndecidableFrequencyError(
            "every series has at most 2 points and their steps disagree "
            f"({', '.join(groups)}), so the timestamps do not tell the frequency; "
            "set data.freq (e.g. 'daily')"
        )
    if len(groups) > 1:
        shown = [
            f"{label}: {', '.join(map(repr, uids[:_MAX_EXAMPLES]))}"
            + (f" and {len(uids) - _MAX_EXAMPLES} more" if len(uids) > _MAX_EXAMPLES else "")
            for label, uids in groups.items()
        ]
        raise MixedFrequencyError(
            f"the series have different frequencies: {'; '.join(shown)}. One model needs one "
            "frequency: train on one group at a time, resample the others to it, or, if the "
            "differences are gaps (missing stamps), set data.freq to the true frequency"
        )
    freqs = [f for f in found.values() if isinstance(f, Frequency)]
    if not freqs:
        alias = next(iter(votes.values()))
        raise UnsupportedFrequencyError(
            f"the series are on a regular grid of every {alias}, which has no defaults here; "
            f"resample to one of {', '.join(FREQUENCY_NAMES[:-1])} (minutely: steps that divide "
            "60 minutes), or give ds as integer steps and set data.freq"
        )
    alias = str(_most_common(np.array([f.alias for f in freqs])))
    return replace(freqs[0], alias=alias)


def _declared(value: str, ds_by_series: Mapping[str, pd.Series], step: int | None) -> Frequency:
    """The frequency `data.freq` names, completed from the data (minute step, anchor)."""
    minutes = _MINUTES.fullmatch(value)
    if value == "steps":
        if step is None:
            raise FrequencyMismatchError(
                "data.freq='steps' is for integer ds, but ds are dates; set data.freq to 'auto'"
            )
        return Frequency("steps", None, str(step), step)
    if minutes:
        k = int(minutes[1])
        return Frequency("minutely", k, f"{k}min", step)
    if value == "minutely":
        diffs = [d for ds in ds_by_series.values() for d in pd.DatetimeIndex(ds).diff()[1:]]
        if step is not None or not diffs:
            raise UndecidableFrequencyError(
                "data.freq='minutely' does not say how many minutes a step is and the data "
                "cannot tell; set data.freq='Kmin' (e.g. '15min')"
            )
        most = pd.Timedelta(_most_common(np.array(diffs)))
        k, rest = divmod(most, pd.Timedelta(minutes=1))
        if rest or k < 1 or 60 % k:
            raise FrequencyMismatchError(
                f"data.freq='minutely', but the most common step is {most}, not a number of "
                "minutes that divides 60; set data.freq to 'auto' or to the data's frequency"
            )
        return Frequency("minutely", int(k), f"{k}min")
    name = cast(FrequencyName, value)
    firsts = [ds.iloc[0] for ds in ds_by_series.values()]
    if step is not None:
        return Frequency(name, None, _ALIAS[name], step)
    freq = Frequency(name, None, _ALIAS[name])
    aliases = np.array([_canonical(_anchored_alias(freq, first), first) for first in firsts])
    return replace(freq, alias=str(_most_common(aliases)))


def _integer_step(ds_by_series: Mapping[str, pd.Series]) -> int:
    """The most common step of integer series (series of 3+ points vote, else 2-point ones)."""
    sizes = [len(ds) for ds in ds_by_series.values()]
    voters = 3 if max(sizes) >= 3 else 2
    votes = {
        uid: int(_most_common(np.diff(ds.to_numpy())))
        for uid, ds in ds_by_series.items()
        if len(ds) >= voters
    }
    if not votes:
        return 1  # single points: no step to check
    groups: dict[int, list[str]] = {}
    for uid, step in votes.items():
        groups.setdefault(step, []).append(uid)
    if len(groups) > 1 and voters == 3:
        shown = [
            f"steps of {s}: {', '.join(map(repr, u[:_MAX_EXAMPLES]))}" for s, u in groups.items()
        ]
        raise MixedFrequencyError(
            f"the series have different integer steps: {'; '.join(shown)}. One model needs "
            "one step: renumber ds, or train on one group at a time"
        )
    return int(_most_common(np.array(list(votes.values()))))


def _check_grid(
    ds_by_series: Mapping[str, pd.Series], freq: Frequency, declared: str | None
) -> None:
    """Raise when a series has stamps off its grid, or a declared frequency is finer than data.

    `declared` names what declared the frequency (for the message); None when it was inferred.
    """
    off: list[str] = []
    adjacent, pairs = False, False
    for uid, ds in ds_by_series.items():
        grid = series_grid(ds, freq)
        position = grid.get_indexer(pd.Index(ds))
        bad = ds[position < 0]
        if len(bad):
            rows = ", ".join(f"row {r} (ds={v})" for r, v in bad.head(_SHOWN).items())
            off.append(
                f"{uid!r}: {rows}" + (f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else "")
            )
        elif len(ds) >= 2:
            pairs = True
            adjacent = adjacent or bool((np.diff(position) == 1).any())
    edges = (
        " (calendar stamps must fall on the first or last day of a month)"
        if freq.name in _CALENDAR[1:]
        else ""
    )
    if off and declared is None:
        raise IrregularSpacingError(
            f"stamps off the {freq.describe()} grid{edges} in {len(off)} series (a series' "
            f"grid starts at its first stamp and moves in whole steps; {_ROWS}): "
            f"{_listing(off)}. Resample each "
            "series to one frequency, or set data.freq to the frequency you mean"
        )
    if off:
        raise FrequencyMismatchError(
            f"{declared} contradicts the timestamps: stamps off the {freq.describe()} "
            f"grid{edges} in {len(off)} series ({_ROWS}): {_listing(off)}. Set data.freq to "
            "'auto' to infer it, or to the frequency the data have"
        )
    if declared is not None and pairs and not adjacent and freq.step is None:
        raise FrequencyMismatchError(
            f"{declared} is finer than the data: no two consecutive stamps in any "
            f"series are one {freq.describe()} step apart, so every point would be followed by "
            "gaps. Set data.freq to 'auto' to infer it, or to the frequency the data have"
        )


def infer_frequency(
    ds_by_series: Mapping[str, pd.Series], freq: str | Frequency = "auto"
) -> Frequency:
    """Find the frequency the series share, and check that every series lies on its grid.

    Args:
        ds_by_series: `{series_id: stamps}`, each sorted ascending without duplicates and indexed
            by the rows they came from (named in errors); all datetimes or all integers.
        freq: `auto`, one of `FrequencyName`, `Kmin` (K-minute steps, K divides 60), or a
            `Frequency` (e.g. the training data's, when reading its test part).

    Returns:
        The shared frequency; `step` is set when `ds` are integers.

    Raises:
        MixedFrequencyError, IrregularSpacingError, FrequencyMismatchError,
        UndecidableFrequencyError, UnsupportedFrequencyError: see the classes.
        ValueError: `freq` is not a known value.
    """
    if not ds_by_series:
        raise ValueError("no series to infer a frequency from")
    is_integer = all(pd.api.types.is_integer_dtype(ds) for ds in ds_by_series.values())
    declared = None if isinstance(freq, Frequency) or freq == "auto" else check_freq_setting(freq)
    if isinstance(freq, Frequency):
        if (freq.step is not None) != is_integer:
            kinds = ("integers", "dates") if is_integer else ("dates", "integers")
            raise FrequencyMismatchError(
                f"ds are {kinds[0]}, but the frequency {freq.describe()} is for {kinds[1]}"
            )
        found = freq
    elif is_integer:
        step = _integer_step(ds_by_series)
        found = _declared(declared or "steps", ds_by_series, step)
    else:
        found = _declared(declared, ds_by_series, None) if declared else _auto(ds_by_series)
    if is_integer:
        claim = None  # no calendar to check a declared name against: only the step is checked
    elif isinstance(freq, Frequency):
        claim = f"the given frequency ({freq.describe()})"
    else:
        claim = None if declared is None else f"data.freq={declared!r}"
    _check_grid(ds_by_series, found, claim)
    return found


def check_freq_setting(value: str) -> str:
    """Validate a `data.freq` value (for the config's validator).

    Args:
        value: `auto`, one of `FrequencyName`, or `Kmin` with K dividing 60 (e.g. `15min`).

    Returns:
        The value unchanged.

    Raises:
        ValueError: an unknown value, naming the allowed ones.
    """
    minutes = _MINUTES.fullmatch(value)
    if value == "auto" or value in FREQUENCY_NAMES or (minutes and 60 % int(minutes[1]) == 0):
        return value
    raise ValueError(
        f"unknown data.freq {value!r}; use 'auto', one of {', '.join(map(repr, FREQUENCY_NAMES))}"
        ", or 'Kmin' with K dividing 60 (e.g. '15min')"
    )
