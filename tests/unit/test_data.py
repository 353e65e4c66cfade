from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stackcast.training.data import (
    DataError,
    DuplicateTimestampError,
    FrequencyMismatchError,
    GapError,
    InvalidKeyError,
    IrregularSpacingError,
    MissingColumnsError,
    MixedFrequencyError,
    NonFiniteValueError,
    NonNumericValueError,
    SeriesTooShortError,
    UndecidableFrequencyError,
    UnsupportedFileError,
    UnsupportedFrequencyError,
    data_fingerprint,
    frame_to_series,
    load_series,
    load_series_set,
    read_long_frame,
    read_series,
)
from stackcast.training.frequency import Frequency

pytestmark = pytest.mark.unit


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def frame(ids: list[str], ds: list[object], y: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": ids, "ds": ds, "y": y})


# --- good data -----------------------------------------------------------------------------


def test_csv_round_trip_sorts_by_ds_orders_ids_and_ignores_extra_columns(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        """
unique_id,ds,y,price
H10,2,20.5,1
H2,3,3.0,1
H10,1,10.0,1
H2,1,1.0,1
H2,2,2.0,1
H10,3,30.0,1
""",
    )
    series = load_series(path, min_length=3)
    assert list(series) == ["H2", "H10"]  # natural order
    np.testing.assert_array_equal(series["H2"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(series["H10"], [10.0, 20.5, 30.0])
    assert all(v.dtype == np.float32 for v in series.values())


def test_csv_gz_with_date_strings_and_zero_padded_ids(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    text = "unique_id,ds,y\n001,2024-01-03,3\n001,2024-01-01,1\n001,2024-01-02,2\n"
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    series = load_series(path, min_length=1)
    assert list(series) == ["001"]
    np.testing.assert_array_equal(series["001"], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_with_datetime_ds_and_integer_ids(tmp_path: Path, suffix: str) -> None:
    stamps = pd.to_datetime(["2024-01-01 02:00", "2024-01-01 00:00", "2024-01-01 01:00"])
    df = pd.DataFrame({"unique_id": [7, 7, 7], "ds": stamps, "y": [3.0, 1.0, 2.0], "x": 0.5})
    path = tmp_path / f"d{suffix}"
    df.to_parquet(path)
    series = load_series(path, min_length=3)
    assert list(series) == ["7"]
    np.testing.assert_array_equal(series["7"], [1.0, 2.0, 3.0])


def test_read_long_frame_keeps_rows_as_stored(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "unique_id,ds,y\n01,1,abc\n")
    df = read_long_frame(path)
    assert df["unique_id"].tolist() == ["01"]
    assert df["y"].tolist() == ["abc"]


# --- files ---------------------------------------------------------------------------------


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.xlsx", "unique_id,ds,y\n")
    with pytest.raises(UnsupportedFileError, match=r"\.xlsx") as info:
        read_long_frame(path)
    assert ".csv" in str(info.value) and ".parquet" in str(info.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        load_series(path, min_length=1)


def test_empty_csv_is_a_data_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "")
    with pytest.raises(DataError, match=r"d\.csv"):
        read_long_frame(path)


# --- bad data ------------------------------------------------------------------------------


def test_exception_hierarchy() -> None:
    for cls in (
        MissingColumnsError,
        InvalidKeyError,
        DuplicateTimestampError,
        NonNumericValueError,
        NonFiniteValueError,
        SeriesTooShortError,
        UnsupportedFileError,
        GapError,
        MixedFrequencyError,
        IrregularSpacingError,
        FrequencyMismatchError,
        UndecidableFrequencyError,
        UnsupportedFrequencyError,
    ):
        assert issubclass(cls, DataError)
    assert issubclass(DataError, ValueError)


def test_missing_columns_names_them_and_lists_found() -> None:
    df = pd.DataFrame({"id": ["a"], "ds": [1], "value": [1.0]})
    with pytest.raises(MissingColumnsError) as info:
        frame_to_series(df, min_length=1)
    msg = str(info.value)
    assert "missing column(s) 'unique_id', 'y';" in msg
    assert "'value'" in msg  # what was found, to help renaming


def test_non_numeric_value_in_csv_names_row_series_and_value(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        "unique_id,ds,y\nA,1,1.0\nA,2,abc\nB,1,2.0\nB,2,\nB,3,3.5\n",
    )
    with pytest.raises(NonNumericValueError) as info:
        load_series(path, min_length=1, fill="ffill")
    msg = str(info.value)
    assert str(path) in msg
    assert "column 'y'" in msg
    assert "row 1 (series 'A', ds=2, y='abc')" in msg
    assert "1 value(s)" in msg  # the empty cell is a gap, not a bad number
    assert "data.fill" in msg


def test_invalid_ds_and_missing_id() -> None:
    df = frame(["a", "a", "b"], ["2024-01-01", "2024-13-45", "2024-01-01"], [1, 2, 3])
    with pytest.raises(InvalidKeyError) as info:
        frame_to_series(df, min_length=1)
    assert "column 'ds'" in str(info.value) and "row 1 (series 'a'" in str(info.value)
    assert "2024-13-45" in str(info.value)

    df = frame(["a", None, "b"], [1, 2, 3], [1, 2, 3])  # type: ignore[list-item]
    with pytest.raises(InvalidKeyError, match=r"column 'unique_id'.*row 1 "):
        frame_to_series(df, min_length=1)


def test_dates_in_a_second_format_are_named() -> None:
    df = frame(["a"] * 4, ["2024-01-01", "2024-01-02", "01/03/2024", "2024-01-04"], [1] * 4)
    with pytest.raises(InvalidKeyError) as info:
        frame_to_series(df, min_length=1)
    msg = str(info.value)
    assert "1 row(s)" in msg and "row 2 (series 'a', ds='01/03/2024'" in msg
    assert "one format" in msg


def test_iso_dates_of_different_precision_are_one_format() -> None:
    df = frame(["a"] * 3, ["2024-01-01", "2024-01-01 01:00", "2024-01-01T02:00:00"], [1, 2, 3])
    found = read_series(df, min_length=1)
    assert found.frequency.name == "hourly"
    np.testing.assert_array_equal(found.series["a"], [1.0, 2.0, 3.0])


def test_utc_offsets_across_a_dst_change_are_compared_in_utc() -> None:
    ds = ["2024-03-31T00:00+01:00", "2024-03-31T01:00+01:00", "2024-03-31T03:00+02:00"]
    found = read_series(frame(["a"] * 3, ds, [1, 2, 3]), min_length=1)
    assert found.frequency.name == "hourly" and found.filled_gaps == 0


def test_fractional_ds_is_not_a_step() -> None:
    with pytest.raises(InvalidKeyError, match=r"row 2 \(series 'a', ds=2.5"):
        frame_to_series(frame(["a"] * 3, [1.0, 2.0, 2.5], [1, 2, 3]), min_length=1)
    series = frame_to_series(frame(["a"] * 3, [1.0, 2.0, 3.0], [1, 2, 3]), min_length=1)
    np.testing.assert_array_equal(series["a"], [1.0, 2.0, 3.0])


def test_duplicates_name_series_timestamp_and_rows() -> None:
    df = frame(["a", "b", "a", "b", "a"], [1, 1, 2, 2, 1], [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(DuplicateTimestampError) as info:
        frame_to_series(df, min_length=1)
    msg = str(info.value)
    assert "row 0 (series 'a', ds=1, y=1.0)" in msg
    assert "row 4 (series 'a', ds=1, y=5.0)" in msg
    assert "'b'" not in msg
    assert "(unique_id, ds)" in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_raises_by_default_and_points_to_fill(bad: float) -> None:
    df = frame(["a", "a", "b", "b"], [1, 2, 1, 2], [1.0, 2.0, bad, 4.0])
    with pytest.raises(NonFiniteValueError) as info:
        frame_to_series(df, min_length=1)
    msg = str(info.value)
    assert f"row 2 (series 'b', ds=1, y={bad})" in msg
    assert "column 'y'" in msg
    assert "set data.fill to one of 'ffill', 'interpolate', 'zero'" in msg


def test_too_short_lists_series_with_lengths_and_the_rest_count() -> None:
    ids = [f"S{i}" for i in range(1, 8) for _ in range(i)]  # S1 has 1 point ... S7 has 7
    ds = [t for i in range(1, 8) for t in range(i)]
    df = frame(ids, ds, [1.0] * len(ids))
    with pytest.raises(SeriesTooShortError) as info:
        frame_to_series(df, min_length=7)
    msg = str(info.value)
    assert "6 series" in msg and "min_length=7" in msg
    assert "'S1' (1 points)" in msg and "'S5' (5 points)" in msg
    assert "'S6'" not in msg and "and 1 more" in msg
    assert "'S7'" not in msg


def test_examples_are_capped_with_a_count_of_the_rest() -> None:
    df = frame(["a"] * 9, list(range(9)), [np.nan] * 8 + [1.0])
    with pytest.raises(NonFiniteValueError) as info:
        frame_to_series(df, min_length=1)
    msg = str(info.value)
    assert "8 NaN/inf" in msg and "row 4 " in msg and "row 5 " not in msg
    assert "and 3 more" in msg


def test_bad_arguments() -> None:
    df = frame(["a"], [1], [1.0])
    with pytest.raises(ValueError, match="min_length"):
        frame_to_series(df, min_length=0)
    with pytest.raises(ValueError, match="fill"):
        frame_to_series(df, min_length=1, fill="mean")  # type: ignore[arg-type]


# --- fill policies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        ("ffill", [2.0, 2.0, 2.0, 2.0, 8.0, 8.0]),
        ("interpolate", [2.0, 2.0, 4.0, 6.0, 8.0, 8.0]),
        ("zero", [0.0, 2.0, 0.0, 0.0, 8.0, 0.0]),
    ],
)
def test_fill_policies_within_each_series(fill: str, expected: list[float]) -> None:
    # shuffled on purpose: filling follows ds order; series "b" must not leak into "a"
    df = frame(
        ["a", "b", "a", "a", "b", "a", "a", "a"],
        [5, 1, 3, 1, 2, 4, 2, 6],
        [8.0, 100.0, np.inf, np.nan, 200.0, np.nan, 2.0, np.nan],
    )
    series = frame_to_series(df, min_length=2, fill=fill)  # type: ignore[arg-type]
    np.testing.assert_allclose(series["a"], expected)
    np.testing.assert_array_equal(series["b"], [100.0, 200.0])


@pytest.mark.parametrize("fill", ["ffill", "interpolate"])
def test_fill_with_nothing_to_fill_from(fill: str) -> None:
    df = frame(["a", "a", "b"], [1, 2, 1], [np.nan, np.inf, 1.0])
    with pytest.raises(NonFiniteValueError, match=r"'a'.*zero"):
        frame_to_series(df, min_length=1, fill=fill)  # type: ignore[arg-type]


# --- gaps and the series set --------------------------------------------------------------


def test_gaps_count_toward_min_length_once_filled() -> None:
    df = frame(["a"] * 3, [1, 2, 5], [1.0, 2.0, 5.0])
    with pytest.raises(GapError, match=r"'a' \(2 missing, first: 3, 4\)"):
        frame_to_series(df, min_length=5)
    series = frame_to_series(df, min_length=5, fill="interpolate")
    np.testing.assert_allclose(series["a"], [1.0, 2.0, 3.0, 4.0, 5.0])


def test_nan_and_gaps_are_filled_together_within_each_series() -> None:
    df = frame(["a", "a", "a", "b", "b", "b"], [1, 2, 4, 1, 2, 3], [1.0, np.nan, 4.0, 9, 9, 9])
    series = frame_to_series(df, min_length=1, fill="interpolate")
    np.testing.assert_allclose(series["a"], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(series["b"], [9.0, 9.0, 9.0])


def test_load_series_set_returns_frequency_last_stamps_and_prefixes_errors(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        """
unique_id,ds,y
a,2024-01-01,1
a,2024-01-02,2
a,2024-01-04,4
b,2024-01-01,5
b,2024-01-02,6
b,2024-01-03,7
""",
    )
    found = load_series_set(path, min_length=1, fill="ffill")
    assert found.frequency == Frequency("daily", None, "D")
    assert found.last_ds == {"a": pd.Timestamp("2024-01-04"), "b": pd.Timestamp("2024-01-03")}
    assert found.filled_gaps == 1
    np.testing.assert_array_equal(found.series["a"], [1.0, 2.0, 2.0, 4.0])
    with pytest.raises(GapError, match=r"^.*d\.csv: 1 timestamp\(s\) missing"):
        load_series(path, min_length=1)
    with pytest.raises(FrequencyMismatchError, match=r"d\.csv: .*'hourly'"):
        load_series_set(path, min_length=1, freq="hourly")


# --- fingerprint ---------------------------------------------------------------------------


def test_fingerprint_is_stable_and_changes_with_the_data() -> None:
    base = {"a": np.array([1.0, 2.0, 3.0], dtype=np.float32), "b": np.array([4.0], np.float32)}
    fp = data_fingerprint(base)
    assert len(fp) == 16 and int(fp, 16) >= 0
    same = {"b": np.array([4.0]), "a": np.array([1.0, 2.0, 3.0])}  # other order, float64
    assert data_fingerprint(same) == fp
    changed = {"a": np.array([1.0, 2.0, 3.5], dtype=np.float32), "b": base["b"]}
    assert data_fingerprint(changed) != fp
    renamed = {"a": base["a"], "c": base["b"]}
    assert data_fingerprint(renamed) != fp
    moved = {"a": base["a"][:2], "b": np.array([3.0, 4.0], np.float32)}  # same values, split
    assert data_fingerprint(moved) != fp


def test_fingerprint_of_loaded_csv_and_parquet_match(tmp_path: Path) -> None:
    df = frame(["a", "a", "b"], [2, 1, 1], [2.0, 1.0, 5.0])
    df.to_parquet(tmp_path / "d.parquet")
    df.to_csv(tmp_path / "d.csv", index=False)
    fp_pq = data_fingerprint(load_series(tmp_path / "d.parquet", min_length=1))
    fp_csv = data_fingerprint(load_series(tmp_path / "d.csv", min_length=1))
    assert fp_pq == fp_csv
