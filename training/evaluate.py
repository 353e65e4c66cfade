"""The `evaluate` verb: score a registered model on held-out test data, the M4 way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from stackcast.models import DataContract, ModelConfig, StackedRNNForecaster
from stackcast.models.contract import model_inputs
from stackcast.training.baselines import naive1, seasonal_naive
from stackcast.training.data import DataError, load_series_set
from stackcast.training.frequency import Frequency
from stackcast.training.m4 import M4_DATASETS, M4_SOURCES, M4Subset, load_m4
from stackcast.training.metrics import score_table, with_published
from stackcast.training.tracking import configure_tracking

OURS = "stackcast"
# Runs logged before `data.source` existed (and models logged outside `stackcast train`)
# trained on M4 Hourly, the only bundled data then.
DEFAULT_SUBSET: M4Subset = "hourly"
FILE_SEASONALITY = 24  # m for a user's file when the version recorded none (before contracts)
SOURCE_PARAM, SEASONALITY_PARAM = "data.source", "data.seasonality"  # TrainConfig.flat() keys


class ContractMismatchError(ValueError):
    """What `evaluate` was asked disagrees with the model version's data contract."""


@dataclass(frozen=True)
class TrainedOn:
    """What `evaluate` reads of a model version: its `DataContract`, or its run's params.

    Versions logged before the data contract existed carry none; their run's params say the
    source and seasonality, and nothing says the frequency.
    """

    source: str | None  # `data.source`; None: not logged (such runs trained on M4 Hourly)
    seasonality: int | None  # m the run was validated with; None: not recorded
    frequency: str | None  # the training series' frequency name; None: not recorded

    @classmethod
    def of(cls, contract: DataContract | None, params: Mapping[str, str]) -> TrainedOn:
        """From the version's contract when it has one, else from its run's params."""
        if contract is not None:
            return cls(contract.source, contract.seasonality, contract.frequency)
        logged = params.get(SEASONALITY_PARAM, "")
        m = int(logged) if logged.isdigit() and int(logged) >= 1 else None
        return cls(params.get(SOURCE_PARAM), m, None)


def trained_subset(source: str | None) -> M4Subset | None:
    """The bundled M4 subset a model trained on, from its `data.source`.

    Returns:
        The subset `source` names; `DEFAULT_SUBSET` when no source was recorded; None when it
        trained on a user's file.

    Raises:
        ContractMismatchError: a `data.source` this version does not know.
    """
    if source is None:
        return DEFAULT_SUBSET
    if source == "file":
        return None
    if source not in M4_SOURCES:
        known = ", ".join([*M4_SOURCES, "file"])
        raise ContractMismatchError(
            f"the model was trained on {SOURCE_PARAM}='{source}'; known: {known}"
        )
    return M4_SOURCES[source]


def run_params(run_id: str | None) -> dict[str, str]:
    """Params of an MLflow run (empty for None: a model logged outside any run)."""
    return dict(MlflowClient().get_run(run_id).data.params) if run_id else {}


def _load_files(
    train_path: Path, test_path: Path
) -> tuple[list[np.ndarray], list[np.ndarray], Frequency]:
    history = load_series_set(train_path, min_length=1)
    # The test file's points follow the history's: its frequency is the history's, checked.
    train = history.series
    test = load_series_set(test_path, min_length=1, freq=history.frequency).series
    if set(train) != set(test):
        missing = sorted(set(train) ^ set(test))[:5]
        raise DataError(f"train and test files list different series, e.g. {missing}")
    return [train[k] for k in train], [test[k] for k in train], history.frequency


@dataclass(frozen=True)
class EvaluationData:
    """What `evaluate` scores: each series' history and test part, and the MASE seasonality."""

    train: list[np.ndarray]  # each (n_i,)
    test: list[np.ndarray]  # each (H,), aligned with train
    seasonality: int  # m of MASE, sNaive and Naive2
    subset: M4Subset | None  # the bundled M4 subset, None for the user's files
    description: str  # one line for the user: which data, how many series


def _seasonality(model_m: int | None, given: int | None, force: bool, what: str) -> int | None:
    """`given` when it agrees with the model's `model_m` (or `force`); else the model's."""
    if given is None or model_m is None or given == model_m:
        return given if given is not None else model_m
    if not force:
        raise ContractMismatchError(
            f"{what} is scored with seasonality m = {model_m}, and --seasonality {given} "
            f"disagrees: drop --seasonality, or add --force to score at m = {given}"
        )
    return given


def _check_frequency(trained: TrainedOn, found: Frequency, force: bool) -> None:
    """A file of another calendar frequency than the model's training data is refused."""
    if trained.frequency is None or found.name == "steps" or force:
        return  # not recorded, or integer positions: no calendar to compare
    if found.name != trained.frequency:
        raise ContractMismatchError(
            f"the model was trained on {trained.frequency} data and the files are "
            f"{found.describe()}: score it on {trained.frequency} data, or add --force"
        )


def evaluation_data(
    trained: TrainedOn,
    train_path: Path | None = None,
    test_path: Path | None = None,
    seasonality: int | None = None,
    force: bool = False,
) -> EvaluationData:
    """The data to score a model on, and the seasonality to score it with.

    Without files: the bundled M4 subset the model trained on (`trained_subset`), with that
    subset's competition seasonality (24 Hourly, 1 Weekly), as M4 scored it. With both files:
    their series, with the seasonality the model was validated with (its data contract; 24
    for a version that recorded none); they must be of the model's frequency. An explicit
    `seasonality` that disagrees with the one the model is scored with, or files of another
    frequency, are refused unless `force`.

    Args:
        trained: what the model version says of its training data (`TrainedOn.of`).
        train_path: long-format history of each series (give `test_path` too).
        test_path: long-format test values that follow `train_path`.
        seasonality: m for MASE, sNaive and Naive2 (None: the model's).
        force: score with `seasonality` and on files of another frequency anyway.

    Raises:
        ContractMismatchError: `seasonality` or the files' frequency disagree with the model;
            no files for a model trained on a file.
        DataError: files that list different series.
        ValueError: only one file given.
    """
    if train_path is not None and test_path is not None:
        train, test, frequency = _load_files(train_path, test_path)
        _check_frequency(trained, frequency, force)
        m = _seasonality(trained.seasonality, seasonality, force, "the model")
        where = f"{train_path.name} / {test_path.name} ({len(train)} series)"
        return EvaluationData(train, test, m or FILE_SEASONALITY, None, where)
    if train_path is not None or test_path is not None:
        raise ValueError("give both --train and --test, or neither (the model's bundled M4 data)")
    subset = trained_subset(trained.source)
    if subset is None:
        raise ContractMismatchError(
            f"the model was trained on a file ({SOURCE_PARAM}=file), not on bundled M4 data: "
            "give its held-out part with --train and --test"
        )
    dataset = M4_DATASETS[subset]
    split = load_m4(subset)
    where = f"M4 {dataset.name} ({len(split.ids)} series, horizon {dataset.horizon})"
    m = _seasonality(dataset.seasonality, seasonality, force, f"M4 {dataset.name}")
    return EvaluationData(split.train, split.test, m or dataset.seasonality, subset, where)


def score_against_baselines(
    train: list[np.ndarray], test: list[np.ndarray], forecasts: Mapping[str, np.ndarray], m: int
) -> pd.DataFrame:
    """Score `forecasts` beside Naive1, sNaive and Naive2 (the OWA reference), the M4 way.

    Args:
        train: each series' history.
        test: each series' test part, shape (H,) each.
        forecasts: method name -> forecasts of shape (n_series, H).
        m: seasonal period of MASE, sNaive and Naive2.

    Returns:
        `score_table`'s rows: `forecasts` in order, then Naive1, sNaive, Naive2.
    """
    horizon = len(test[0])
    methods = {
        **forecasts,
        "Naive1": naive1(train, horizon),
        "sNaive": seasonal_naive(train, horizon, m),
    }  # score_table adds Naive2
    return score_table(train, np.stack(test).astype(np.float64), methods, m)


def forecast_windows(
    model: mlflow.pyfunc.PyFuncModel, train: list[np.ndarray], config: ModelConfig
) -> np.ndarray:
    """Forecast each series from its history through the one window policy: (S, horizon).

    Raises:
        ShortHistoryError: a history is shorter than the model needs (`min_history`).
    """
    windows = model_inputs(train, config)  # (S, T): cropped, or padded as the model says
    return np.asarray(model.predict(windows), dtype=np.float64)


def evaluate(
    model_uri: str,
    *,
    train_path: Path | None = None,
    test_path: Path | None = None,
    seasonality: int | None = None,
    force: bool = False,
    log_to_run: bool = True,
    announce: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Score `model_uri` (e.g. `models:/stackcast@champion`) against the test part.

    What to score on and with which seasonality comes from the version's data contract
    (`evaluation_data`): the bundled M4 subset it trained on with the competition's
    seasonality, or the given files with the seasonality it was validated with. The forecast
    starts right after each training series. Naive1, sNaive and Naive2 are scored on the same
    data, and OWA is relative to Naive2. With `log_to_run`, the test metrics and table are
    added to the MLflow run that produced the model.

    Args:
        model_uri: the model to score.
        train_path: long-format history of each series (give `test_path` too).
        test_path: long-format test values that follow `train_path`.
        seasonality: m for MASE, sNaive and Naive2; must agree with the model's unless `force`.
        force: score with `seasonality`, or on files of another frequency, anyway.
        log_to_run: add `test/*` metrics and `evaluation/test_scores.csv` to the model's run.
        announce: called once with a line saying which data and seasonality are scored.

    Returns:
        Rows per method (`sMAPE`, `MASE`, `OWA`, `source`), the published rows of the M4
        subset appended when the data is bundled and scored with the competition's seasonality.

    Raises:
        ContractMismatchError: `seasonality` or the files' frequency disagree with the model;
            no files for a model trained on a file; a model horizon shorter than the test part.
        DataError: files listing different series.
        ValueError: only one of the files given.
    """
    configure_tracking()
    run_id = mlflow.models.get_model_info(model_uri).run_id
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    python_model = pyfunc.unwrap_python_model()
    network: StackedRNNForecaster = python_model.model
    trained = TrainedOn.of(getattr(python_model, "data_contract", None), run_params(run_id))
    data = evaluation_data(trained, train_path, test_path, seasonality, force)
    if announce is not None:
        announce(f"data: {data.description}, seasonality m = {data.seasonality}")
    horizon = len(data.test[0])
    if network.config.horizon < horizon:
        raise ContractMismatchError(
            f"the model forecasts {network.config.horizon} steps and the test part has "
            f"{horizon}: score it on a test part of at most {network.config.horizon} points"
        )
    ours = forecast_windows(pyfunc, data.train, network.config)[:, :horizon]
    table = score_against_baselines(data.train, data.test, {OURS: ours}, data.seasonality)
    if log_to_run and run_id:
        client = MlflowClient()
        scores = table.loc[OURS].to_dict()
        for column in ("sMAPE", "MASE", "OWA"):
            client.log_metric(run_id, f"test/{column.lower()}", float(scores[column]))
        client.log_text(run_id, table.to_csv(), "evaluation/test_scores.csv")
    if data.subset is None or data.seasonality != M4_DATASETS[data.subset].seasonality:
        return table.assign(source="ours")  # published rows used M4's m: not comparable
    return with_published(table, data.subset)
