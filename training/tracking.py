"""Where runs go: `MLFLOW_TRACKING_URI` if set, else an embedded SQLite store in the cwd."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

from stackcast.models.contract import EMBEDDED_ARTIFACTS, EMBEDDED_DB


def configure_tracking() -> str:
    """Point MLflow at the configured server, or at the embedded default; returns the URI."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri = f"sqlite:///{Path(EMBEDDED_DB).resolve()}"
    # The registry follows the tracking URI unless MLFLOW_REGISTRY_URI says otherwise (MLflow's
    # own rule). Setting it here would export MLFLOW_REGISTRY_URI to every child process.
    mlflow.set_tracking_uri(uri)
    return uri


# The experiment's type, as MLflow 3's experiment-type selector records it: model training.
# (The UI's GenAI / Model training switch itself is a per-browser setting; a link with
# `?workflowType=machine_learning` opens the runs: see README, "Browse the runs".)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def experiment_id(name: str) -> str:
    """Id of the named experiment, created if missing (local artifacts for the embedded store).

    The experiment is tagged as model training (`EXPERIMENT_KIND_TAG`).
    """
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        if EXPERIMENT_KIND_TAG not in existing.tags:
            mlflow.MlflowClient().set_experiment_tag(
                existing.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING
            )
        return str(existing.experiment_id)
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = Path(EMBEDDED_ARTIFACTS).resolve().as_uri()
    tags = {EXPERIMENT_KIND_TAG: MODEL_TRAINING}
    return str(mlflow.create_experiment(name, artifact_location=location, tags=tags))
