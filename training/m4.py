"""The bundled M4 subsets (Makridakis et al., IJF 2020): one loader, to arrays and long format.

Each subset ships as two gzipped wide CSV files under `data/` (see its SOURCE.md): the training
part of every series and the competition's hidden test part, aligned by series id.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from stackcast.training.frequency import Frequency

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
M4Subset = Literal["hourly", "weekly"]


@dataclass(frozen=True)
class M4Dataset:
    """One M4 subset as the competition fixed it: where its files are and how it is scored."""

    name: str  # "Hourly": the competition's name, also the files' stem
    directory: Path  # holds {name}-train.csv(.gz) and {name}-test.csv(.gz)
    horizon: int  # H: the test part's length
    seasonality: int  # m of MASE and of Naive2's seasonality test (the metric's, not the data's)
    num_series: int
    frequency: Frequency  # the files hold positions, not dates: integer steps of 1


M4_DATASETS: dict[M4Subset, M4Dataset] = {
    "hourly": M4Dataset(
        "Hourly",
        DATA_DIR / "m4-hourly",
        horizon=48,
        seasonality=24,
        num_series=414,
        frequency=Frequency("hourly", None, "h", step=1),
    ),
    # M4 scored Weekly with m = 1 (no seasonal naive in MASE; Naive2 = Naive1), though a weekly
    # series has a yearly cycle of about 52.18 weeks.
    "weekly": M4Dataset(
        "Weekly",
        DATA_DIR / "m4-weekly",
        horizon=13,
        seasonality=1,
        num_series=359,
        frequency=Frequency("weekly", None, "W", step=1),
    ),
}
# `DataConfig.source` values that name a bundled subset.
M4_SOURCES: dict[str, M4Subset] = {"m4_hourly": "hourly", "m4_weekly": "weekly"}

# Hourly's settings under their original names (bench/peer.py, the Dockerfile and tests use them).
M4_HOURLY_DIR = M4_DATASETS["hourly"].directory
HORIZON = M4_DATASETS["hourly"].horizon
SEASONALITY = M4_DATASETS["hourly"].seasonality


@dataclass(frozen=True)
class M4Split:
    """M4 series in wide form: one array per series, ids in file order."""

    ids: list[str]
    train: list[np.ndarray]  # each (n_i,): Hourly n_i in {700, 960}, Weekly 80 .. 2,597
    test: list[np.ndarray]  # each (H,): 48 Hourly, 13 Weekly


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


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.csv.gz", directory / f"{stem}.csv"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"M4 file {stem}.csv(.gz) not found in {directory}")


def load_m4(subset: M4Subset, directory: Path | None = None) -> M4Split:
    """Load one bundled M4 subset: every series' training part and its test part.

    Args:
        subset: "hourly" (414 series, H = 48) or "weekly" (359 series, H = 13).
        directory: folder holding `{Name}-train.csv(.gz)` and `{Name}-test.csv(.gz)`
            (default: the subset's folder under `data/`).

    Returns:
        The split, with train and test aligned by series id.

    Raises:
        ValueError: an unknown subset, or train and test files that list different series.
        FileNotFoundError: a file is missing.
    """
    if subset not in M4_DATASETS:
        raise ValueError(f"unknown M4 subset '{subset}'; allowed: {', '.join(M4_DATASETS)}")
    dataset = M4_DATASETS[subset]
    folder = directory or dataset.directory
    train_ids, train = _read_wide(_find(folder, f"{dataset.name}-train"))
    test_ids, test = _read_wide(_find(folder, f"{dataset.name}-test"))
    if train_ids != test_ids:
        raise ValueError(f"M4 {dataset.name} train and test files list different series")
    return M4Split(ids=train_ids, train=train, test=test)


def load_m4_hourly(directory: Path = M4_HOURLY_DIR) -> M4Split:
    """Load the 414 M4 Hourly series (train part and the 48-point test part).

    Args:
        directory: folder holding `Hourly-train.csv(.gz)` and `Hourly-test.csv(.gz)`.

    Returns:
        The split, with train and test aligned by series id.
    """
    return load_m4("hourly", directory)


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
