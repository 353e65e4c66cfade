"""The bundled M4 Hourly data (Makridakis et al., IJF 2020): loaders to arrays and long format."""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

M4_HOURLY_DIR = Path(__file__).resolve().parents[1] / "data" / "m4-hourly"
HORIZON = 48  # competition forecast horizon for Hourly
SEASONALITY = 24  # competition seasonal period m for Hourly


@dataclass(frozen=True)
class M4Split:
    """M4 series in wide form: one array per series, ids in file order."""

    ids: list[str]
    train: list[np.ndarray]  # each (n_i,), n_i in {700, 960}
    test: list[np.ndarray]  # each (48,)


def _read_wide(path: Path) -> tuple[list[str], list[np.ndarray]]:
    opener = gzip.open if path.suffix == ".gz" else open
    ids: list[str] = []
    values: list[np.ndarray] = []
    with opener(path, "rt", newline="") as handle:
        rows = csv.reader(handle)
        next(rows)  # header: "V1","V2",...
        for row in rows:
            ids.append(row[0])
            values.append(np.array([float(v) for v in row[1:] if v != ""], dtype=np.float64))
    return ids, values


def load_m4_hourly(directory: Path = M4_HOURLY_DIR) -> M4Split:
    """Load the 414 M4 Hourly series (train part and the 48-point test part).

    Args:
        directory: folder holding `Hourly-train.csv(.gz)` and `Hourly-test.csv(.gz)`.

    Returns:
        The split, with train and test aligned by series id.
    """

    def find(stem: str) -> Path:
        for candidate in (directory / f"{stem}.csv.gz", directory / f"{stem}.csv"):
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"M4 file {stem}.csv(.gz) not found in {directory}")

    train_ids, train = _read_wide(find("Hourly-train"))
    test_ids, test = _read_wide(find("Hourly-test"))
    if train_ids != test_ids:
        raise ValueError("M4 Hourly train and test files list different series")
    return M4Split(ids=train_ids, train=train, test=test)


def to_long(
    ids: list[str], series: list[np.ndarray], start: list[int] | None = None
) -> pd.DataFrame:
    """Convert wide series to the long format `unique_id, ds, y` (ds = 1-based time index).

    Args:
        ids: series ids.
        series: one array of values per id.
        start: first `ds` of each series (default 1); the test part starts after the train part.
    """
    starts = start or [1] * len(ids)
    frames = [
        pd.DataFrame({"unique_id": uid, "ds": np.arange(s, s + len(v)), "y": v})
        for uid, v, s in zip(ids, series, starts, strict=True)
    ]
    return pd.concat(frames, ignore_index=True)
