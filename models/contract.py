"""The train <-> serve contract: what both sides must agree on, in one import.

`stackcast.training` writes models, tags and stores by these names; `stackcast.service` reads
them. How a history becomes the model's input (crop, pad, mask) is the window policy of
`stackcast.models.window`, re-exported here: training windows, `evaluate` and the service all
call it from this module. The model's own contract (architecture, window, horizon) is
`ModelConfig`, saved beside the weights, and so is its data side, `DataContract` (source,
frequency, the metric's seasonality).
"""

from __future__ import annotations

from stackcast.models.data_contract import DataContract
from stackcast.models.window import ShortHistoryError, min_history, model_input, model_inputs

__all__ = [
    "CONFIG_FILE",
    "DATA_CONTRACT_FILE",
    "EMBEDDED_ARTIFACTS",
    "EMBEDDED_DB",
    "EMBEDDED_TRACKING_URI",
    "METRIC_TAG",
    "METRIC_VALUE_TAG",
    "MODEL_DIR",
    "MODEL_DIR_ARTIFACT",
    "WEIGHTS_FILE",
    "DataContract",
    "ShortHistoryError",
    "min_history",
    "model_input",
    "model_inputs",
]

# Inside a logged MLflow model: MLflow's pyfunc keeps `artifacts={KEY: dir}` under
# `artifacts/KEY/`; the directory holds the weights and the config (models/serialization.py).
MODEL_DIR_ARTIFACT = "model_dir"
MODEL_DIR = f"artifacts/{MODEL_DIR_ARTIFACT}"
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "model_config.json"
DATA_CONTRACT_FILE = "data_contract.json"  # models/data_contract.py; absent in older versions

# Model version tags: the validation score that decides the alias, shown by the service's /info.
METRIC_TAG = "validation_metric"
METRIC_VALUE_TAG = "validation_metric_value"

# The embedded store `stackcast train` writes to (in the working directory) when
# MLFLOW_TRACKING_URI is not set, and that `stackcast serve` reads by default.
EMBEDDED_DB = "mlflow.db"  # the model registry needs a database-backed store
EMBEDDED_ARTIFACTS = "mlartifacts"
EMBEDDED_TRACKING_URI = f"sqlite:///{EMBEDDED_DB}"
