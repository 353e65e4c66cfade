"""Which data `stackcast evaluate` scores a model on, and with which seasonality."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackcast.training.evaluate import DEFAULT_SUBSET, evaluation_data, trained_subset


@pytest.mark.parametrize(
    ("params", "subset"),
    [
        ({"data.source": "m4_weekly"}, "weekly"),
        ({"data.source": "m4_hourly"}, "hourly"),
        ({}, "hourly"),  # a run from before data.source was logged trained on M4 Hourly
        ({"data.source": "file", "data.path": "sales.csv"}, None),
    ],
)
def test_subset_is_read_from_the_run(params: dict[str, str], subset: str | None) -> None:
    assert trained_subset(params) == subset
    assert DEFAULT_SUBSET == "hourly"


def test_unknown_source_is_named() -> None:
    with pytest.raises(ValueError, match=r"data\.source='m5_daily'; known: m4_hourly, m4_weekly"):
        trained_subset({"data.source": "m5_daily"})


def test_hourly_keeps_its_seasonality() -> None:
    data = evaluation_data({})
    assert (data.subset, data.seasonality, len(data.train)) == ("hourly", 24, 414)
    assert {len(t) for t in data.test} == {48}


def test_a_model_trained_on_a_file_needs_its_files() -> None:
    with pytest.raises(ValueError, match="give its held-out part with --train and --test"):
        evaluation_data({"data.source": "file"})


def test_one_file_alone_is_refused(synthetic_csv: Path) -> None:
    with pytest.raises(ValueError, match="give both --train and --test"):
        evaluation_data({"data.source": "m4_weekly"}, train_path=synthetic_csv)


@pytest.mark.parametrize(
    ("params", "given", "m"),
    [
        ({"data.seasonality": "7"}, None, 7),  # the model's
        ({}, None, 24),  # a run that logged none: the old default
        ({"data.seasonality": "auto"}, None, 24),  # not an integer: the old default
        ({"data.seasonality": "7"}, 12, 12),  # explicit wins
    ],
)
def test_user_files_use_the_runs_seasonality(
    synthetic_csv: Path, params: dict[str, str], given: int | None, m: int
) -> None:
    data = evaluation_data({"data.source": "file", **params}, synthetic_csv, synthetic_csv, given)
    assert data.subset is None and data.seasonality == m
    assert len(data.train) == len(data.test) == 12
    assert data.description == "series.csv / series.csv (12 series)"
