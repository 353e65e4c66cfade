"""`stackcast predict`'s file reading: long format in, one ordered history per series out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stackcast.service.client import read_histories


def _frame() -> pd.DataFrame:
    # rows shuffled on purpose: histories come back ordered by ds
    return pd.DataFrame(
        {
            "unique_id": ["B", "A", "B", "A", "A", "B"],
            "ds": [2, 3, 1, 1, 2, 3],
            "y": [20.0, 3.0, 10.0, 1.0, 2.0, 30.0],
            "extra": ["x"] * 6,
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_histories_are_ordered_by_ds_per_series(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"series{suffix}"
    if suffix == ".parquet":
        _frame().to_parquet(path)
    else:
        _frame().to_csv(path, index=False)
    assert read_histories(path) == {"A": [1.0, 2.0, 3.0], "B": [10.0, 20.0, 30.0]}
    assert list(read_histories(path, ["B", "A"])) == ["B", "A"]


def test_unknown_id_missing_column_and_format_are_named(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    _frame().to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"no series \['Z'\]"):
        read_histories(path, ["A", "Z"])
    _frame().drop(columns="ds").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['ds'\]"):
        read_histories(path)
    with pytest.raises(ValueError, match=r"use a \.csv"):
        read_histories(tmp_path / "series.xlsx")
