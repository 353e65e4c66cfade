"""The train <-> serve contract: every name both sides must agree on, written once.

`stackcast.training` writes models, tags and stores by these names; `stackcast.service` reads
them. The model's own contract (architecture, window, horizon) is `ModelConfig`, saved beside
the weights; how a history becomes the model's input is `stackcast.models.window`.
"""

from __future__ import annotations

# Inside a logged MLflow model: MLflow's pyfunc keeps `artifacts={KEY: dir}` under
# `artifacts/KEY/`; the directory holds the weights and the config (models/serialization.py).
MODEL_DIR_ARTIFACT = "model_dir"
MODEL_DIR = f"artifacts/{MODEL_DIR_ARTIFACT}"
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "model_config.json"

# Model version tags: the validation score that decides the alias, shown by the service's /info.
METRIC_TAG = "validation_metric"
METRIC_VALUE_TAG = "validation_metric_value"

# The embedded store `stackcast train` writes to (in the working directory) when
# MLFLOW_TRACKING_URI is not set, and that `stackcast serve` reads by default.
EMBEDDED_DB = "mlflow.db"  # the model registry needs a database-backed store
EMBEDDED_ARTIFACTS = "mlartifacts"
EMBEDDED_TRACKING_URI = f"sqlite:///{EMBEDDED_DB}"
