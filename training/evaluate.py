"""The `evaluate` verb: score a registered model on held-out test data, the M4 way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.models.contract import model_inputs
from stackcast.training.baselines import naive1, seasonal_naive
from stackcast.training.data import load_series_set
from stackcast.training.m4 import M4_DATASETS, M4_SOURCES, M4Subset, load_m4
from stackcast.training.metrics import score_table, with_published
from stackcast.training.tracking import configure_tracking

OURS = "stackcast"
# Runs logged before `data.source` existed (and models logged outside `stackcast train`)
# trained on M4 Hourly, the only bundled data then.
DEFAULT_SUBSET: M4Subset = "hourly"
FILE_SEASONALITY = 24  # m for a user's file when the model's run logged no integer seasonality
SOURCE_PARAM, SEASONALITY_PARAM = "data.source", "data.seasonality"  # TrainConfig.flat() keys


def trained_subset(params: Mapping[str, str]) -> M4Subset | None:
    """The bundled M4 subset a run trained on, from its MLflow params.

    Args:
        params: the run's params (`TrainConfig.flat()`, as `stackcast train` logs them).

    Returns:
        The subset named by `data.source`; `DEFAULT_SUBSET` when the run logged no source;
        None when it trained on a user's file.

    Raises:
        ValueError: a `data.source` this version does not know.
    """
    source = params.get(SOURCE_PARAM)
    if source is None:
        return DEFAULT_SUBSET
    if source == "file":
        return None
    if source not in M4_SOURCES:
        known = ", ".join([*M4_SOURCES, "file"])
        raise ValueError(f"the model's run has {SOURCE_PARAM}='{source}'; known: {known}")
    return M4_SOURCES[source]


def run_params(run_id: str | None) -> dict[str, str]:
    """Params of an MLflow run (empty for None: a model logged outside any run)."""
    return dict(MlflowClient().get_run(run_id).data.params) if run_id else {}


def _file_seasonality(params: Mapping[str, str]) -> int:
    logged = params.get(SEASONALITY_PARAM, "")
    return int(logged) if logged.isdigit() and int(logged) >= 1 else FILE_SEASONALITY


def _load_files(train_path: Path, test_path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    history = load_series_set(train_path, min_length=1)
    # The test file's points follow the history's: its frequency is the history's, checked.
    train = history.series
    test = load_series_set(test_path, min_length=1, freq=history.frequency).series
    if set(train) != set(test):
        missing = sorted(set(train) ^ set(test))[:5]
        raise ValueError(f"train and test files list different series, e.g. {missing}")
    return [train[k] for k in train], [test[k] for k in train]


@dataclass(frozen=True)
class EvaluationData:
    """What `evaluate` scores: each series' history and test part, and the MASE seasonality."""

    train: list[np.ndarray]  # each (n_i,)
    test: list[np.ndarray]  # each (H,), aligned with train
    seasonality: int  # m of MASE, sNaive and Naive2
    subset: M4Subset | None  # the bundled M4 subset, None for the user's files
    description: str  # one line for the user: which data, how many series


def evaluation_data(
    params: Mapping[str, str],
    train_path: Path | None = None,
    test_path: Path | None = None,
    seasonality: int | None = None,
) -> EvaluationData:
    """The data to score a model on, and the seasonality to score it with.

    Without files: the bundled M4 subset the model's run trained on (`trained_subset`), with
    that subset's competition seasonality (24 Hourly, 1 Weekly). With both files: their series,
    with the run's `data.seasonality` (24 if it logged no integer). An explicit `seasonality`
    wins in both cases.

    Args:
        params: the params of the run that logged the model (see `run_params`).
        train_path: long-format history of each series (give `test_path` too).
        test_path: long-format test values that follow `train_path`.
        seasonality: m for MASE, sNaive and Naive2 (None: the subset's, or the run's).

    Raises:
        ValueError: only one file given; no files for a model trained on a file; files that
            list different series.
    """
    if train_path is not None and test_path is not None:
        train, test = _load_files(train_path, test_path)
        m = seasonality or _file_seasonality(params)
        where = f"{train_path.name} / {test_path.name} ({len(train)} series)"
        return EvaluationData(train, test, m, None, where)
    if train_path is not None or test_path is not None:
        raise ValueError("give both --train and --test, or neither (the model's bundled M4 data)")
    subset = trained_subset(params)
    if subset is None:
        raise ValueError(
            f"the model was trained on a file ({SOURCE_PARAM}=file), not on bundled M4 data: "
            "give its held-out part with --train and --test"
        )
    dataset = M4_DATASETS[subset]
    split = load_m4(subset)
    where = f"M4 {dataset.name} ({len(split.ids)} series, horizon {dataset.horizon})"
    return EvaluationData(
        split.train, split.test, seasonality or dataset.seasonality, subset, where
    )


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
    log_to_run: bool = True,
    announce: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Score `model_uri` (e.g. `models:/stackcast@champion`) against the test part.

    The data and seasonality are `evaluation_data`'s: the bundled M4 subset the model was
    trained on (M4 Hourly for runs that did not log one) with its competition seasonality, or
    the given files. The forecast starts right after each training series. Naive1, sNaive and
    Naive2 are scored on the same data, and OWA is relative to Naive2. With `log_to_run`, the
    test metrics and table are added to the MLflow run that produced the model.

    Args:
        model_uri: the model to score.
        train_path: long-format history of each series (give `test_path` too).
        test_path: long-format test values that follow `train_path`.
        seasonality: m for MASE, sNaive and Naive2 (None: the subset's, or the run's).
        log_to_run: add `test/*` metrics and `evaluation/test_scores.csv` to the model's run.
        announce: called once with a line saying which data and seasonality are scored.

    Returns:
        Rows per method (`sMAPE`, `MASE`, `OWA`, `source`), the published rows of the M4
        subset appended when the data is bundled and scored with the competition's seasonality.

    Raises:
        ValueError: only one of the files given; no files for a model trained on a file;
            files listing different series; a model horizon shorter than the test part.
    """
    configure_tracking()
    run_id = mlflow.models.get_model_info(model_uri).run_id
    data = evaluation_data(run_params(run_id), train_path, test_path, seasonality)
    if announce is not None:
        announce(f"data: {data.description}, seasonality m = {data.seasonality}")
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    network: StackedRNNForecaster = pyfunc.unwrap_python_model().model
    horizon = len(data.test[0])
    if network.config.horizon < horizon:
        raise ValueError(f"model horizon {network.config.horizon} < test horizon {horizon}")
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
