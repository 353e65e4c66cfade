from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackcast.training.data import read_series
from stackcast.training.data_errors import (
    FrequencyMismatchError,
    GapError,
    IrregularSpacingError,
    MixedFrequencyError,
    UndecidableFrequencyError,
    UnsupportedFrequencyError,
)
from stackcast.training.frequency import Frequency, check_freq_setting, infer_frequency
from stackcast.training.frequency_defaults import (
    DEFAULTS,
    FrequencyDefaults,
    defaults_for,
    markdown_table,
)

pytestmark = pytest.mark.unit


def regular(alias: str, start: str, n: int = 30, uid: str = "a", drop: tuple[int, ...] = ()):
    stamps = pd.date_range(start, periods=n, freq=alias).delete(list(drop))
    return pd.DataFrame({"unique_id": uid, "ds": stamps, "y": np.arange(len(stamps), dtype=float)})


# --- inference -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "start", "name", "minutes", "expected_alias", "described"),
    [
        ("min", "2024-01-01", "minutely", 1, "min", "1-minute"),
        ("5min", "2024-01-01", "minutely", 5, "5min", "5-minute"),
        ("15min", "2024-01-01 00:15", "minutely", 15, "15min", "15-minute"),
        ("30min", "2024-01-01", "minutely", 30, "30min", "30-minute"),
        ("h", "2024-01-01", "hourly", None, "h", "hourly"),
        ("D", "2024-01-01", "daily", None, "D", "daily"),
        ("B", "2024-01-03", "business_daily", None, "B", "business daily"),
        ("W-SUN", "2024-01-07", "weekly", None, "W-SUN", "weekly (W-SUN)"),
        ("W-WED", "2024-01-03", "weekly", None, "W-WED", "weekly (W-WED)"),
        ("MS", "2020-01-01", "monthly", None, "MS", "monthly (MS)"),
        ("ME", "2020-01-31", "monthly", None, "ME", "monthly (ME)"),
        ("QS-JAN", "2020-01-01", "quarterly", None, "QS-JAN", "quarterly (QS-JAN)"),
        ("QE-DEC", "2020-03-31", "quarterly", None, "QE-DEC", "quarterly (QE-DEC)"),
        ("YS", "1990-01-01", "yearly", None, "YS-JAN", "yearly (YS-JAN)"),
        ("YE", "1990-12-31", "yearly", None, "YE-DEC", "yearly (YE-DEC)"),
    ],
)
@pytest.mark.parametrize("gapped", [False, True], ids=["regular", "with-gaps"])
def test_every_frequency_is_inferred_with_and_without_gaps(
    alias: str,
    start: str,
    name: str,
    minutes: int | None,
    expected_alias: str,
    described: str,
    gapped: bool,
) -> None:
    # with gaps pandas' infer_freq gives up; the most common step (months for calendars) decides
    drop = (3, 4, 10) if gapped else ()
    frame = pd.concat([regular(alias, start, drop=drop), regular(alias, start, 20, uid="b")])
    result = read_series(frame, min_length=1, fill="zero")
    assert result.frequency == Frequency(name, minutes, expected_alias)  # type: ignore[arg-type]
    assert result.frequency.describe() == described
    assert result.filled_gaps == len(drop)
    assert len(result.series["a"]) == 30
    assert result.last_ds["a"] == pd.date_range(start, periods=30, freq=alias)[-1]


@pytest.mark.parametrize("step", [1, 7])
def test_integer_ds_are_steps_of_the_most_common_difference(step: int) -> None:
    ds = [step * i for i in (0, 1, 2, 3, 5, 6)]  # one gap at 4 * step
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": [1.0, 2, 3, 4, 6, 7]})
    result = read_series(frame, min_length=1, fill="interpolate")
    assert result.frequency == Frequency("steps", None, str(step), step)
    assert result.frequency.describe() == f"integer steps of {step}"
    np.testing.assert_allclose(result.series["a"], [1, 2, 3, 4, 5, 6, 7])
    assert result.last_ds == {"a": 6 * step}


def test_series_with_two_points_decide_only_when_nothing_longer_does() -> None:
    two = pd.DataFrame(
        {"unique_id": ["a", "a"], "ds": pd.to_datetime(["2024-01-01", "2024-01-02"])}
    )
    assert read_series(two.assign(y=1.0), min_length=1).frequency.name == "daily"
    # a 2-point series 2 days apart inside daily data is a gap, not a vote
    longer = regular("D", "2024-02-01", 5, uid="b")
    both = pd.concat(
        [two.assign(y=1.0).iloc[[0]], longer, regular("D", "2024-03-01", 3, "c", (1,))]
    )
    assert read_series(both, min_length=1, fill="ffill").frequency.name == "daily"


# --- errors --------------------------------------------------------------------------------


def test_a_gap_under_fill_error_names_the_series_and_the_first_missing_stamps() -> None:
    frame = pd.concat(
        [regular("h", "2024-01-01", uid="a", drop=(3, 4, 9)), regular("h", "2024-01-01", uid="b")]
    )
    with pytest.raises(GapError) as info:
        read_series(frame, min_length=1)
    msg = str(info.value)
    assert "3 timestamp(s) missing from the hourly grid" in msg
    assert "'a' (3 missing, first: 2024-01-01 03:00:00, 2024-01-01 04:00:00" in msg
    assert "'b'" not in msg
    assert "data.fill" in msg and "'ffill', 'interpolate', 'zero'" in msg


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        ("ffill", [0.0, 1.0, 2.0, 2.0, 2.0, 5.0, 6.0]),
        ("interpolate", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        ("zero", [0.0, 1.0, 2.0, 0.0, 0.0, 5.0, 6.0]),
    ],
)
def test_each_fill_policy_fills_a_gap_on_the_full_grid(fill: str, expected: list[float]) -> None:
    stamps = pd.date_range("2024-01-01", periods=7, freq="D").delete([3, 4])
    frame = pd.DataFrame({"unique_id": "a", "ds": stamps, "y": [0.0, 1.0, 2.0, 5.0, 6.0]})
    result = read_series(frame, min_length=7, fill=fill)  # type: ignore[arg-type]
    np.testing.assert_allclose(result.series["a"], expected)
    assert result.filled_gaps == 2
    assert result.last_ds["a"] == pd.Timestamp("2024-01-07")


def test_mixed_frequencies_name_series_of_each() -> None:
    frame = pd.concat(
        [regular("h", "2024-01-01", uid=f"h{i}") for i in range(7)]
        + [regular("D", "2024-01-01", uid="d1"), regular("D", "2024-01-01", uid="d2")]
    )
    with pytest.raises(MixedFrequencyError) as info:
        read_series(frame, min_length=1)
    msg = str(info.value)
    assert "hourly: 'h0', 'h1', 'h2', 'h3', 'h4' and 2 more" in msg
    assert "daily: 'd1', 'd2'" in msg
    assert "data.freq" in msg


def test_integer_series_with_different_steps_are_mixed() -> None:
    frame = pd.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 4, "ds": [1, 2, 3, 4, 7, 14, 21, 28]})
    with pytest.raises(MixedFrequencyError, match=r"steps of 1: 'a'; steps of 7: 'b'"):
        read_series(frame.assign(y=1.0), min_length=1)


def test_irregular_spacing_names_the_series_and_rows() -> None:
    frame = pd.concat([regular("h", "2024-01-01", uid="ok"), regular("h", "2024-01-01", uid="odd")])
    frame = frame.reset_index(drop=True)
    frame.loc[35, "ds"] += pd.Timedelta(minutes=30)  # row 35 is 'odd' at 05:00 -> 05:30
    with pytest.raises(IrregularSpacingError) as info:
        read_series(frame, min_length=1)
    msg = str(info.value)
    assert "'odd': row 35 (ds=2024-01-01 05:30:00)" in msg
    assert "'ok'" not in msg and "hourly grid" in msg


def test_monthly_stamps_off_the_month_edges_are_irregular() -> None:
    stamps = pd.to_datetime(["2024-01-15", "2024-02-15", "2024-03-15", "2024-04-15"])
    frame = pd.DataFrame({"unique_id": "m", "ds": stamps, "y": 1.0})
    with pytest.raises(IrregularSpacingError, match="first or last day of a month"):
        read_series(frame, min_length=1)


def test_an_unsupported_regular_grid_says_so() -> None:
    with pytest.raises(UnsupportedFrequencyError, match="every 2h"):
        read_series(regular("2h", "2024-01-01"), min_length=1)


@pytest.mark.parametrize(
    ("alias", "declared", "match"),
    [
        ("h", "daily", r"data.freq='daily' contradicts.*row 1 \(ds=2024-01-01 01:00:00\)"),
        ("D", "hourly", r"data.freq='hourly' is finer than the data"),
        ("D", "business_daily", r"contradicts"),  # weekend stamps are off a business-day grid
        ("D", "steps", r"'steps' is for integer ds"),
    ],
)
def test_a_declared_frequency_that_contradicts_dates_raises(
    alias: str, declared: str, match: str
) -> None:
    with pytest.raises(FrequencyMismatchError, match=match):
        read_series(regular(alias, "2024-01-01"), min_length=1, freq=declared)


def test_a_declared_frequency_that_fits_the_dates_is_used() -> None:
    found = read_series(regular("15min", "2024-01-01"), min_length=1, freq="minutely").frequency
    assert found == Frequency("minutely", 15, "15min")
    # declared daily on business-day data: the weekends are gaps
    with pytest.raises(GapError, match="daily grid"):
        read_series(regular("B", "2024-01-01"), min_length=1, freq="daily")


def test_integer_ds_with_a_declared_frequency_get_its_defaults() -> None:
    frame = pd.DataFrame({"unique_id": "a", "ds": np.arange(10), "y": 1.0})
    found = read_series(frame, min_length=1, freq="hourly").frequency
    assert (found.name, found.step) == ("hourly", 1)
    assert defaults_for(found) == DEFAULTS["hourly"]
    assert read_series(frame, min_length=1, freq="15min").frequency.minutes == 15
    with pytest.raises(UndecidableFrequencyError, match="'15min'"):
        read_series(frame, min_length=1, freq="minutely")


def test_single_points_cannot_decide_and_say_what_to_set() -> None:
    frame = pd.DataFrame(
        {"unique_id": ["a", "b"], "ds": pd.to_datetime(["2024-01-01", "2024-02-03"])}
    )
    with pytest.raises(UndecidableFrequencyError, match=r"set data\.freq"):
        read_series(frame.assign(y=1.0), min_length=1)
    assert read_series(frame.assign(y=1.0), min_length=1, freq="daily").frequency.name == "daily"


def test_a_given_frequency_checks_another_file() -> None:
    train = read_series(regular("W-SUN", "2024-01-07"), min_length=1).frequency
    test = regular("W-SUN", "2024-08-04", n=1)  # one point: alone it decides nothing
    assert read_series(test, min_length=1, freq=train).frequency == train
    with pytest.raises(FrequencyMismatchError):
        read_series(regular("D", "2024-01-01"), min_length=1, freq=train)


def test_freq_settings_are_validated() -> None:
    assert check_freq_setting("auto") == "auto"
    assert check_freq_setting("15min") == "15min"
    for bad in ("fortnightly", "7min", "H"):
        with pytest.raises(ValueError, match="'auto'"):
            check_freq_setting(bad)
    with pytest.raises(ValueError, match="no series"):
        infer_frequency({})


# --- defaults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("hourly", (24, 24, 168, 24, 48)),
        ("daily", (7, 1, 56, 7, 14)),
        ("business_daily", (5, 1, 40, 5, 10)),
        ("weekly", (52, 1, 52, 4, 13)),
        ("monthly", (12, 12, 36, 3, 18)),
        ("quarterly", (4, 4, 16, 4, 8)),
        ("yearly", (1, 1, 12, 1, 6)),
    ],
)
def test_defaults_table_rows(name: str, row: tuple[int, ...]) -> None:
    found = defaults_for(Frequency(name, None, "x"))  # type: ignore[arg-type]
    assert (
        found.season_length,
        found.metric_seasonality,
        found.input_size,
        found.patch_size,
        found.horizon,
    ) == row


def test_weekly_note_says_how_the_fractional_year_is_handled() -> None:
    note = defaults_for(Frequency("weekly", None, "W-SUN")).note
    assert "52.18-week year drifts by 0.18 week per year" in note and "m = 1" in note


@pytest.mark.parametrize(
    ("k", "season", "patch"),
    [(1, 60, 10), (5, 288, 48), (15, 96, 16), (30, 48, 8)],
)
def test_minutely_defaults_follow_the_formula(k: int, season: int, patch: int) -> None:
    found = defaults_for(Frequency("minutely", k, f"{k}min"))
    assert found == FrequencyDefaults(season, season, 2 * season, patch, season, found.note)


def test_integer_steps_without_a_frequency_have_no_defaults() -> None:
    with pytest.raises(UndecidableFrequencyError, match=r"data.freq.*model.season_length"):
        defaults_for(Frequency("steps", None, "1", 1))


def test_markdown_table_has_a_row_per_frequency() -> None:
    lines = markdown_table().splitlines()
    assert lines[0].startswith("| frequency | season length | metric seasonality |")
    assert len(lines) == 2 + 1 + len(DEFAULTS) + 1  # header, rule, minutely, rows, steps
    assert "| weekly | 52 | 1 | 52 | 4 | 13 |" in markdown_table()
