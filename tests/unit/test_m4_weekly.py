"""M4 Weekly, the second bundled benchmark: the files load completely, and the evaluator's
scoring path reproduces the published Weekly Naive row (Makridakis et al., IJF 2020)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stackcast.training.config import DataConfig
from stackcast.training.evaluate import TrainedOn, evaluation_data, score_against_baselines
from stackcast.training.m4 import M4_DATASETS, M4Split, load_m4
from stackcast.training.metrics import PUBLISHED_M4_HOURLY, PUBLISHED_M4_WEEKLY, with_published
from stackcast.training.train import load_training_series

WEEKLY = M4_DATASETS["weekly"]


@pytest.fixture(scope="module")
def weekly() -> M4Split:
    return load_m4("weekly")


@pytest.fixture(scope="module")
def scored() -> pd.DataFrame:
    """The Weekly table exactly as `evaluate` builds it, with no model rows."""
    data = evaluation_data(TrainedOn.of(None, {"data.source": "m4_weekly"}))  # a weekly run
    return score_against_baselines(data.train, data.test, {}, data.seasonality)


def test_bundled_weekly_split_is_complete(weekly: M4Split) -> None:
    assert weekly.ids == [f"W{i}" for i in range(1, 360)]
    assert len(weekly.train) == len(weekly.test) == WEEKLY.num_series == 359
    lengths = [len(v) for v in weekly.train]
    assert (min(lengths), int(np.median(lengths)), max(lengths)) == (80, 934, 2597)
    assert {len(v) for v in weekly.test} == {WEEKLY.horizon} == {13}
    assert all(np.isfinite(v).all() for v in weekly.train + weekly.test)


def test_test_part_continues_its_own_series(weekly: M4Split) -> None:
    # aligned by id: each test part starts near its own series' last value, not another's
    rel_jump = [
        abs(t[0] - x[-1]) / abs(x[-1]) for x, t in zip(weekly.train, weekly.test, strict=True)
    ]
    assert np.median(rel_jump) < 0.05


def test_evaluator_reproduces_the_published_weekly_naive_row(scored: pd.DataFrame) -> None:
    assert list(scored.index) == ["Naive1", "sNaive", "Naive2"]
    for method in scored.index:  # with m = 1, all three are the last value repeated
        smape_pub, mase_pub, owa_pub = PUBLISHED_M4_WEEKLY[method]
        assert (smape_pub, mase_pub, owa_pub) == (9.161, 2.777, 1.000)
        assert round(scored.loc[method, "sMAPE"], 3) == smape_pub
        assert round(scored.loc[method, "MASE"], 3) == mase_pub
        assert round(scored.loc[method, "OWA"], 3) == owa_pub


def test_weekly_is_scored_with_m4s_seasonality() -> None:
    trained = TrainedOn.of(None, {"data.source": "m4_weekly", "data.seasonality": "52"})
    data = evaluation_data(trained)
    assert (data.subset, data.seasonality) == ("weekly", 1)  # the metric's m, not the run's
    assert data.description == "M4 Weekly (359 series, horizon 13)"


def test_with_published_weekly_appends_the_weekly_rows(scored: pd.DataFrame) -> None:
    table = with_published(scored, "weekly")
    assert list(table.columns) == ["sMAPE", "MASE", "OWA", "source"]
    assert (table["source"] == "ours").sum() == 3
    published = table[table["source"] == "published M4"]
    assert list(published.index) == list(PUBLISHED_M4_WEEKLY)
    assert len(published) == 10
    assert published.loc["#235 Darin & Stellwagen (best Weekly OWA)", "OWA"] == 0.739
    assert published.loc["#118 Smyl, ES-RNN hybrid (1st overall)", "OWA"] == 0.851
    assert not set(published.index) & {"#238 (best Hourly OWA)", "#237 (3rd overall)"}
    hourly = with_published(scored)  # the default stays Hourly
    assert list(hourly[hourly["source"] == "published M4"].index) == list(PUBLISHED_M4_HOURLY)


def test_weekly_is_a_training_source(weekly: M4Split) -> None:
    series = load_training_series(DataConfig(source="m4_weekly"), min_length=1)
    assert list(series) == weekly.ids
    np.testing.assert_array_equal(series["W7"], weekly.train[6])
    with pytest.raises(ValueError, match=r"only read when data\.source is 'file'"):
        DataConfig(source="m4_weekly", path="x.csv")  # type: ignore[arg-type]


def test_unknown_subset_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed: hourly, weekly"):
        load_m4("daily")  # type: ignore[arg-type]
