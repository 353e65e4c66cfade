"""The bundled M4 Hourly files load completely and convert to the long format the trainer reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stackcast.training.data import load_series
from stackcast.training.m4 import HORIZON, load_m4_hourly, to_long


def test_bundled_split_is_complete() -> None:
    split = load_m4_hourly()
    assert len(split.ids) == 414 and split.ids[0] == "H1" and split.ids[-1] == "H414"
    assert sorted({len(v) for v in split.train}) == [700, 960]
    assert {len(v) for v in split.test} == {HORIZON}
    assert all(np.isfinite(v).all() for v in split.train + split.test)


def test_long_format_round_trips_through_the_trainer_loader(tmp_path: Path) -> None:
    split = load_m4_hourly()
    ids, train, test = split.ids[:5], split.train[:5], split.test[:5]
    starts = [len(v) + 1 for v in train]  # the test part continues each series' index
    frame = to_long(ids, train)
    future = to_long(ids, test, start=starts)
    assert list(frame.columns) == ["unique_id", "ds", "y"]
    assert future.groupby("unique_id")["ds"].min().to_dict() == dict(zip(ids, starts, strict=True))
    path = tmp_path / "m4.csv"
    frame.sample(frac=1.0, random_state=0).to_csv(path, index=False)  # order must not matter
    series = load_series(path, min_length=1)
    for uid, values in zip(ids, train, strict=True):
        np.testing.assert_allclose(series[uid], values.astype(np.float32))
