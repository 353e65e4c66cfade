"""Log the forecaster as an MLflow model, register it, and move the alias on improvement."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from stackcast.models import StackedRNNForecaster, save_model_dir
from stackcast.models.contract import METRIC_TAG, METRIC_VALUE_TAG, MODEL_DIR_ARTIFACT

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the repository: models/, stackcast/


@dataclass(frozen=True)
class Registration:
    """What `register_model` did."""

    name: str
    version: int
    alias: str
    alias_moved: bool
    previous_champion: int | None
    metric: str
    value: float


def log_forecaster(model: StackedRNNForecaster, input_example: np.ndarray, name: str) -> str:
    """Log `model` to the active run as a pyfunc model-from-code; returns its model URI.

    The logged model holds `weights.safetensors` + `model_config.json` and the `models`
    package, so `mlflow.pyfunc.load_model` and `mlflow models serve` need no pickle.
    """
    model = model.cpu().eval()
    with torch.inference_mode():
        output_example = model(torch.as_tensor(input_example)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_model_dir(model, Path(tmp) / MODEL_DIR_ARTIFACT)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(PYFUNC_CODE),
            artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
            code_paths=[str(_model_code(Path(tmp)))],
            signature=infer_signature(input_example, output_example),
            input_example=input_example,
            pip_requirements=_requirements(),
        )
    return str(info.model_uri)


def _model_code(tmp: Path) -> Path:
    """`stackcast/` holding `models/` alone: the code the pyfunc imports, as `stackcast.models`.

    Under the project's own import name, so a process with its own `models` module loads it.
    """
    package = tmp / "code" / "stackcast"
    shutil.copytree(PACKAGE_ROOT / "models", package / "models", ignore=_NOT_CODE)
    shutil.copy2(PACKAGE_ROOT / "stackcast" / "__init__.py", package / "__init__.py")
    return package


_NOT_CODE = shutil.ignore_patterns("__pycache__", "*.pyc")


def _requirements() -> list[str]:
    import mlflow as _mlflow
    import pydantic
    import safetensors

    return [
        f"torch=={torch.__version__.split('+')[0]}",
        f"mlflow=={_mlflow.__version__}",
        f"pydantic=={pydantic.__version__}",
        f"safetensors=={safetensors.__version__}",
    ]


def register_model(
    model_uri: str,
    *,
    name: str,
    alias: str,
    metric: str,
    value: float,
    tags: dict[str, str],
) -> Registration:
    """Register `model_uri` as a new version; move `alias` to it only if it is better.

    The first version takes the alias. Later versions take it only when `value` (lower is
    better) beats the current alias holder's `validation_metric_value` tag on the same metric.
    """
    client = MlflowClient()
    version = mlflow.register_model(model_uri, name)
    number = int(version.version)
    for key, val in {**tags, METRIC_TAG: metric, METRIC_VALUE_TAG: f"{value:.6g}"}.items():
        client.set_model_version_tag(name, str(number), key, val)
    try:
        holder = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        holder = None
    previous = int(holder.version) if holder is not None else None
    holder_value = _holder_value(holder.tags if holder is not None else {}, metric)
    # A holder scored on another metric is not comparable: the alias stays (move it by hand).
    moved = holder is None or (holder_value is not None and value < holder_value)
    if moved:
        client.set_registered_model_alias(name, alias, str(number))
    return Registration(name, number, alias, moved, previous, metric, value)


def _holder_value(tags: dict[str, str], metric: str) -> float | None:
    """The alias holder's value of `metric`, or None if it was scored on another metric."""
    if tags.get(METRIC_TAG) != metric or METRIC_VALUE_TAG not in tags:
        return None
    return float(tags[METRIC_VALUE_TAG])
