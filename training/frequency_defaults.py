"""The defaults each frequency implies: season length, metric seasonality, windows, horizon.

One table, as data; `defaults_for` reads it and `markdown_table` renders it for the README.
Metric seasonality follows M4's convention where M4 fixes it (hourly 24, monthly 12, quarterly 4,
and m = 1 for daily, weekly and yearly data); the season length is what the model's seasonal
features and patches use, which may be longer than what M4 scores with.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

from stackcast.training.data_errors import UndecidableFrequencyError
from stackcast.training.frequency import Frequency, FrequencyName


@dataclass(frozen=True)
class FrequencyDefaults:
    """What `auto` means for one frequency.

    Attributes:
        season_length: the seasonal period the model uses (steps).
        metric_seasonality: m of MASE and of Naive2's seasonality test (M4's convention).
        input_size: the input window (steps).
        patch_size: steps per patch; divides the season length.
        horizon: the suggested forecast horizon (steps).
        note: why, in one line.
    """

    season_length: int
    metric_seasonality: int
    input_size: int
    patch_size: int
    horizon: int
    note: str


DEFAULTS: dict[FrequencyName, FrequencyDefaults] = {
    "hourly": FrequencyDefaults(24, 24, 168, 24, 48, "daily cycle; a week of input (M4 Hourly)"),
    "daily": FrequencyDefaults(7, 1, 56, 7, 14, "weekly cycle; M4 scores daily at m = 1"),
    "business_daily": FrequencyDefaults(5, 1, 40, 5, 10, "5-day week; scored at m = 1 as daily"),
    "weekly": FrequencyDefaults(
        52,
        1,
        52,
        4,
        13,
        "a year of input (M4 Weekly: BENCHMARKS.md); 52: the 52.18-week year drifts by "
        "0.18 week per year against a lag of 52; the network learns the rest; M4 scores "
        "weekly at m = 1",
    ),
    "monthly": FrequencyDefaults(12, 12, 36, 3, 18, "yearly cycle; M4 Monthly (m = 12, h = 18)"),
    "quarterly": FrequencyDefaults(4, 4, 16, 4, 8, "yearly cycle; M4 Quarterly (m = 4, h = 8)"),
    "yearly": FrequencyDefaults(1, 1, 12, 1, 6, "no season; M4 Yearly (m = 1, h = 6)"),
}
_MINUTELY_NOTE = "a day when that is at most 288 steps, else an hour; M4 has no minute data"


def _minutely(minutes: int) -> FrequencyDefaults:
    """The k-minute row: a season of a day (1440/k) if that is <= 288 steps, else of an hour."""
    if minutes < 1 or 60 % minutes:
        raise ValueError(f"a minute step must divide 60, got {minutes}")
    season = 1440 // minutes if 1440 // minutes <= 288 else 60 // minutes
    patch = max(d for d in range(1, season + 1) if season % d == 0 and d <= max(season // 6, 1))
    return FrequencyDefaults(season, season, 2 * season, patch, season, _MINUTELY_NOTE)


def defaults_for(freq: Frequency) -> FrequencyDefaults:
    """The defaults row for a frequency.

    Args:
        freq: the data's frequency.

    Returns:
        The row of the table (for minutely, computed from the step).

    Raises:
        UndecidableFrequencyError: integer steps with no named frequency: nothing says what a
            season is.
    """
    if freq.name == "minutely":
        return _minutely(freq.minutes or 0)
    if freq.name == "steps":
        raise UndecidableFrequencyError(
            f"ds are {freq.describe()} and no frequency names what a step is, so there is no "
            "default season, window or horizon; set data.freq (e.g. 'hourly' if one step is an "
            "hour), or set model.season_length, model.input_size, model.patch_size, "
            "model.horizon and data.seasonality"
        )
    return DEFAULTS[freq.name]


def markdown_table() -> str:
    """The table as Markdown, for the README (no `tabulate` here, so joined by hand).

    Returns:
        A Markdown table, one row per frequency, the minutely row as its formula.
    """
    header = ["frequency", *(f.name.replace("_", " ") for f in fields(FrequencyDefaults))]
    minutely = [
        "k-minute (k divides 60)",
        "s = 1440/k if <= 288, else 60/k",
        "s",
        "2s",
        "largest divisor of s that is <= s/6",
        "s",
        _MINUTELY_NOTE,
    ]
    rows = [minutely]
    rows += [[name.replace("_", " "), *map(str, astuple(row))] for name, row in DEFAULTS.items()]
    rows.append(["steps (integer ds)", *["set data.freq or the model keys"] * 5, ""])
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
