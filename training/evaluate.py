"""The `evaluate` verb: score a registered model on held-out test data, the M4 way."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.models.window import model_inputs
from stackcast.training.baselines import naive1, seasonal_naive
from stackcast.training.data import load_series
from stackcast.training.m4 import load_m4_hourly
from stackcast.training.metrics import score_table, with_published
from stackcast.training.tracking import configure_tracking

OURS = "stackcast"


def _load_split(
    train_path: Path | None, test_path: Path | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if train_path is None and test_path is None:
        split = load_m4_hourly()
        return split.train, split.test
    if train_path is None or test_path is None:
        raise ValueError("give both --train and --test, or neither (bundled M4 Hourly)")
    train = load_series(train_path, min_length=1)
    test = load_series(test_path, min_length=1)
    if set(train) != set(test):
        missing = sorted(set(train) ^ set(test))[:5]
        raise ValueError(f"train and test files list different series, e.g. {missing}")
    return [train[k] for k in train], [test[k] for k in train]


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
    seasonality: int = 24,
    log_to_run: bool = True,
) -> pd.DataFrame:
    """Score `model_uri` (e.g. `models:/stackcast@champion`) against the test part.

    The forecast starts right after each training series. Naive1, sNaive and Naive2 are scored
    on the same data, and OWA is relative to Naive2. With `log_to_run`, the test metrics and
    table are added to the MLflow run that produced the model.

    Returns:
        Rows per method (`sMAPE`, `MASE`, `OWA`, `source`), published M4 rows appended when the
        data is the bundled M4 Hourly set.
    """
    configure_tracking()
    train, test = _load_split(train_path, test_path)
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    network: StackedRNNForecaster = pyfunc.unwrap_python_model().model
    horizon = len(test[0])
    if network.config.horizon < horizon:
        raise ValueError(f"model horizon {network.config.horizon} < test horizon {horizon}")
    ours = forecast_windows(pyfunc, train, network.config)[:, :horizon]
    y = np.stack(test).astype(np.float64)
    table = score_table(
        train,
        y,
        {
            OURS: ours,
            "Naive1": naive1(train, horizon),
            "sNaive": seasonal_naive(train, horizon, seasonality),
        },  # score_table adds Naive2, the OWA reference
        seasonality,
    )
    if log_to_run:
        run_id = mlflow.models.get_model_info(model_uri).run_id
        client = MlflowClient()
        scores = table.loc[OURS].to_dict()
        for column in ("sMAPE", "MASE", "OWA"):
            client.log_metric(run_id, f"test/{column.lower()}", float(scores[column]))
        client.log_text(run_id, table.to_csv(), "evaluation/test_scores.csv")
    is_m4 = train_path is None
    return with_published(table) if is_m4 else table.assign(source="ours")
