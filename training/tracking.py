"""Where runs go: `MLFLOW_TRACKING_URI` if set, else an embedded SQLite store in the cwd."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import mlflow
import requests
from mlflow.exceptions import MlflowException

from stackcast.models.contract import EMBEDDED_ARTIFACTS, EMBEDDED_DB


def configure_tracking() -> str:
    """Point MLflow at the configured server, or at the embedded default; returns the URI."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri = f"sqlite:///{Path(EMBEDDED_DB).resolve()}"
    # The registry follows the tracking URI unless MLFLOW_REGISTRY_URI says otherwise (MLflow's
    # own rule). Setting it here would export MLFLOW_REGISTRY_URI to every child process.
    mlflow.set_tracking_uri(uri)
    if uri.startswith(("http://", "https://")):
        _probe(uri)
    return uri


class TrackingUnreachableError(ConnectionError):
    """The tracking server did not answer the first request; the message names its URI."""


# MLflow's client retries a failed request 7 times with exponential backoff and waits 120 s for
# an answer (MLflow's documented MLFLOW_HTTP_REQUEST_* variables): a server that is down would
# hang the first command for minutes. The first contact asks once; later requests, in the
# middle of a run, keep MLflow's patience. Values the user set win.
_FIRST_CONTACT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@contextmanager
def _first_contact() -> Iterator[None]:
    added = [name for name in _FIRST_CONTACT if name not in os.environ]
    os.environ.update({name: _FIRST_CONTACT[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _probe(uri: str) -> None:
    """Ask the tracking server once, with MLflow's own client; raise when it does not answer.

    Raises:
        TrackingUnreachableError: no connection, or no answer within the timeout.
    """
    try:
        with _first_contact():
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except MlflowException as error:
        cause = error.__cause__ or error.__context__  # MLflow wraps the transport error
        if not isinstance(cause, requests.RequestException):
            raise
        parts = urlsplit(uri)  # no credentials in the message
        host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        shown = urlunsplit(parts._replace(netloc=host))
        raise TrackingUnreachableError(
            f"tracking server {shown} (MLFLOW_TRACKING_URI) unreachable "
            f"({type(cause).__name__}): start it, or unset MLFLOW_TRACKING_URI to use the "
            f"embedded store ./{EMBEDDED_DB}"
        ) from error


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
