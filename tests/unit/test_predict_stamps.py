"""`stackcast predict`'s output: each forecast step's `ds`, on the series' own grid."""

from __future__ import annotations

import pandas as pd
import pytest

from stackcast.predict import with_stamps
from stackcast.training.data import read_series
from stackcast.training.frequency import future_stamps, infer_frequency


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (
            pd.date_range("2024-01-01 05:00", periods=5, freq="h"),
            ["2024-01-01 10:00", "2024-01-01 11:00"],
        ),
        (  # month ends stay month ends, February included
            pd.date_range("2023-10-31", periods=4, freq="ME"),
            ["2024-02-29", "2024-03-31"],
        ),
        (  # weekly on Wednesdays stays on Wednesdays
            pd.date_range("2024-01-03", periods=4, freq="W-WED"),
            ["2024-01-31", "2024-02-07"],
        ),
        (  # business days skip the weekend
            pd.bdate_range("2024-01-01", periods=10),
            ["2024-01-15", "2024-01-16"],
        ),
    ],
)
def test_future_stamps_follow_the_series_grid(
    stamps: pd.DatetimeIndex, expected: list[str]
) -> None:
    freq = infer_frequency({"a": pd.Series(stamps)})
    assert future_stamps(stamps[-1], freq, 2) == [pd.Timestamp(s) for s in expected]


def test_integer_ds_continue_in_their_step() -> None:
    freq = infer_frequency({"a": pd.Series([3, 5, 7, 9])})
    assert future_stamps(9, freq, 3) == [11, 13, 15]


def test_each_forecast_row_gets_its_series_own_next_stamps() -> None:
    frame = pd.DataFrame(
        {
            "unique_id": ["A"] * 3 + ["B"] * 4,
            "ds": list(pd.date_range("2024-01-01", periods=3, freq="D"))
            + list(pd.date_range("2024-02-01", periods=4, freq="D")),
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    data = read_series(frame, min_length=1)
    table = pd.DataFrame(
        {"unique_id": ["B", "B", "A", "A"], "h": [1, 2, 1, 2], "y_hat": [0.1, 0.2, 0.3, 0.4]}
    )
    out = with_stamps(table, data)
    assert list(out.columns) == ["unique_id", "ds", "h", "y_hat"]
    assert out["ds"].tolist() == [
        pd.Timestamp("2024-02-05"),
        pd.Timestamp("2024-02-06"),
        pd.Timestamp("2024-01-04"),
        pd.Timestamp("2024-01-05"),
    ]
    assert out["y_hat"].tolist() == [0.1, 0.2, 0.3, 0.4]
