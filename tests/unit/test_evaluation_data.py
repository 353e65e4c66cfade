"""Which data `stackcast evaluate` scores a model on, and with which seasonality.

Both come from the model version's data contract (`DataContract`, saved beside the weights);
a version logged before it existed is read from its run's params.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stackcast.models import DataContract
from stackcast.training.evaluate import (
    DEFAULT_SUBSET,
    ContractMismatchError,
    TrainedOn,
    evaluation_data,
    trained_subset,
)

HOURLY_FILE = DataContract(source="file", frequency="hourly", freq_alias="h", seasonality=7)


def from_params(params: dict[str, str]) -> TrainedOn:
    return TrainedOn.of(None, params)


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
    assert trained_subset(from_params(params).source) == subset
    assert DEFAULT_SUBSET == "hourly"


def test_unknown_source_is_named() -> None:
    with pytest.raises(ValueError, match=r"data\.source='m5_daily'; known: m4_hourly, m4_weekly"):
        trained_subset("m5_daily")


def test_the_contract_wins_over_the_params() -> None:
    trained = TrainedOn.of(HOURLY_FILE, {"data.source": "m4_weekly", "data.seasonality": "1"})
    assert trained == TrainedOn("file", 7, "hourly")


def test_hourly_keeps_its_seasonality() -> None:
    data = evaluation_data(from_params({}))
    assert (data.subset, data.seasonality, len(data.train)) == ("hourly", 24, 414)
    assert {len(t) for t in data.test} == {48}


def test_a_model_trained_on_a_file_needs_its_files() -> None:
    with pytest.raises(ValueError, match="give its held-out part with --train and --test"):
        evaluation_data(TrainedOn.of(HOURLY_FILE, {}))


def test_one_file_alone_is_refused(synthetic_csv: Path) -> None:
    with pytest.raises(ValueError, match="give both --train and --test"):
        evaluation_data(from_params({"data.source": "m4_weekly"}), train_path=synthetic_csv)


@pytest.mark.parametrize(
    ("params", "given", "m"),
    [
        ({"data.seasonality": "7"}, None, 7),  # the model's
        ({}, None, 24),  # a run that logged none: the old default
        ({"data.seasonality": "auto"}, None, 24),  # not an integer: the old default
        ({}, 12, 12),  # nothing recorded to disagree with
    ],
)
def test_user_files_of_an_older_version_use_the_runs_seasonality(
    synthetic_csv: Path, params: dict[str, str], given: int | None, m: int
) -> None:
    trained = from_params({"data.source": "file", **params})
    data = evaluation_data(trained, synthetic_csv, synthetic_csv, given)
    assert data.subset is None and data.seasonality == m
    assert len(data.train) == len(data.test) == 12
    assert data.description == "series.csv / series.csv (12 series)"


def test_user_files_are_scored_with_the_contracts_seasonality(synthetic_csv: Path) -> None:
    trained = TrainedOn.of(HOURLY_FILE, {"data.seasonality": "24"})
    assert evaluation_data(trained, synthetic_csv, synthetic_csv).seasonality == 7
    assert evaluation_data(trained, synthetic_csv, synthetic_csv, 7).seasonality == 7


def test_a_seasonality_that_disagrees_with_the_contract_needs_force(synthetic_csv: Path) -> None:
    trained = TrainedOn.of(HOURLY_FILE, {})
    with pytest.raises(ContractMismatchError, match=r"m = 7, and --seasonality 24 disagrees"):
        evaluation_data(trained, synthetic_csv, synthetic_csv, 24)
    forced = evaluation_data(trained, synthetic_csv, synthetic_csv, 24, force=True)
    assert forced.seasonality == 24


def test_m4_weekly_is_scored_at_its_competition_seasonality_unless_forced() -> None:
    weekly = from_params({"data.source": "m4_weekly"})
    with pytest.raises(ContractMismatchError, match=r"M4 Weekly is scored with seasonality m = 1"):
        evaluation_data(weekly, seasonality=52)
    assert evaluation_data(weekly, seasonality=52, force=True).seasonality == 52
    assert evaluation_data(weekly, seasonality=1).seasonality == 1


def _daily_file(path: Path) -> Path:
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    frame = pd.DataFrame({"unique_id": "A", "ds": days, "y": range(40)})
    frame.to_csv(path, index=False)
    return path


def test_files_of_another_frequency_than_the_models_need_force(tmp_path: Path) -> None:
    daily = _daily_file(tmp_path / "daily.csv")
    trained = TrainedOn.of(HOURLY_FILE, {})
    with pytest.raises(
        ContractMismatchError, match="trained on hourly data and the files are daily"
    ):
        evaluation_data(trained, daily, daily)
    assert evaluation_data(trained, daily, daily, force=True).seasonality == 7


def test_files_of_integer_steps_carry_no_calendar_to_compare(synthetic_csv: Path) -> None:
    daily_model = DataContract(source="file", frequency="daily", freq_alias="D", seasonality=7)
    data = evaluation_data(TrainedOn.of(daily_model, {}), synthetic_csv, synthetic_csv)
    assert data.seasonality == 7
