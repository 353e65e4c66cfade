"""`evaluate` finds the M4 subset in the params `stackcast train` logs (real MLflow store)."""

from __future__ import annotations

import mlflow

from stackcast.training.config import TrainConfig
from stackcast.training.evaluate import TrainedOn, run_params, trained_subset


def test_subset_comes_from_the_logged_config(mlflow_store: str) -> None:
    config = TrainConfig.model_validate({"data": {"source": "m4_weekly"}})
    with mlflow.start_run() as run:
        mlflow.log_params(config.flat())  # what train.py logs
    assert trained_subset(TrainedOn.of(None, run_params(run.info.run_id)).source) == "weekly"
    assert run_params(None) == {}  # a model logged outside any run
