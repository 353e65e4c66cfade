"""Log the forecaster as an MLflow model, register it, and move the alias on improvement.

Improvement is only judged between comparable versions: validated on the same data, horizon
and windows, on the same metric.
"""

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

from stackcast.models import DataContract, StackedRNNForecaster, save_model_dir
from stackcast.models.contract import METRIC_TAG, METRIC_VALUE_TAG, MODEL_DIR_ARTIFACT

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the repository: models/, stackcast/
# What the validation score was measured on (`comparability_tags`): the alias compares scores
# only between versions whose tags agree.
FINGERPRINT_TAG = "data_fingerprint"
HORIZON_TAG = "horizon"
VAL_WINDOWS_TAG = "val_windows"
VAL_STEP_TAG = "val_step"


@dataclass(frozen=True)
class Registration:
    """What `register_model` did, and why the alias moved or stayed."""

    name: str
    version: int
    alias: str
    alias_moved: bool
    previous_champion: int | None
    metric: str
    value: float
    reason: str  # "new", "better", "not better", or what made the scores incomparable
    comparable: bool = True  # False: the holder was validated otherwise (the reason says how)


def log_forecaster(
    model: StackedRNNForecaster,
    input_example: np.ndarray,
    name: str,
    data: DataContract | None = None,
) -> str:
    """Log `model` to the active run as a pyfunc model-from-code; returns its model URI.

    The logged model holds `weights.safetensors` + `model_config.json` (+ `data_contract.json`
    from `data`) and the `models` package, so `mlflow.pyfunc.load_model` and `mlflow models
    serve` need no pickle.
    """
    model = model.cpu().eval()
    with torch.inference_mode():
        output_example = model(torch.as_tensor(input_example)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_model_dir(model, Path(tmp) / MODEL_DIR_ARTIFACT, data)
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


def comparability_tags(
    *, fingerprint: str, horizon: int, val_windows: int, val_step: int
) -> dict[str, str]:
    """What a validation score was measured on: two scores compare only if these are equal.

    Set on every registered version; `register_model` compares them with the alias holder's.
    """
    return {
        FINGERPRINT_TAG: fingerprint,
        HORIZON_TAG: str(horizon),
        VAL_WINDOWS_TAG: str(val_windows),
        VAL_STEP_TAG: str(val_step),
    }


def register_model(
    model_uri: str,
    *,
    name: str,
    alias: str,
    metric: str,
    value: float,
    tags: dict[str, str],
    comparable: dict[str, str],
    promote: bool = False,
) -> Registration:
    """Register `model_uri` as a new version; move `alias` to it only if it is better.

    The first version takes the alias. A later version takes it only when it was validated
    like the alias holder (the same `comparable` tags, see `comparability_tags`, and the same
    metric) and `value` (lower is better) beats the holder's `validation_metric_value`.
    `promote` moves the alias regardless; the reason still says what was not comparable.
    """
    client = MlflowClient()
    version = mlflow.register_model(model_uri, name)
    number = int(version.version)
    own = {**tags, **comparable, METRIC_TAG: metric, METRIC_VALUE_TAG: f"{value:.6g}"}
    for key, val in own.items():
        client.set_model_version_tag(name, str(number), key, val)
    try:
        holder = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        holder = None
    if holder is None:
        client.set_registered_model_alias(name, alias, str(number))
        return Registration(name, number, alias, True, None, metric, value, "new")
    previous = int(holder.version)
    differences = incomparable(holder.tags, {**comparable, METRIC_TAG: metric})
    better = not differences and value < float(holder.tags[METRIC_VALUE_TAG])
    reason = "; ".join(differences) or ("better" if better else "not better")
    moved = better or promote
    if moved:
        client.set_registered_model_alias(name, alias, str(number))
        reason = reason if better else f"promoted, although {reason}"
    return Registration(
        name, number, alias, moved, previous, metric, value, reason, comparable=not differences
    )


def incomparable(holder: dict[str, str], candidate: dict[str, str]) -> list[str]:
    """Why a score validated as the `candidate` tags say was not measured like the `holder`'s.

    Both are version tags (`comparability_tags` plus the metric's name); an empty list means
    comparable. A holder without these tags (registered by an older stackcast) is not comparable.
    """
    missing = [key for key in (*candidate, METRIC_VALUE_TAG) if key not in holder]
    if missing:
        return [
            f"its validation is not recorded (registered by an older stackcast: no {missing[0]})"
        ]
    return [
        f"{_DIFFERENCE[key]}: {key} {candidate[key]} != {holder[key]}"
        for key in candidate
        if candidate[key] != holder[key]
    ]


_DIFFERENCE = {  # tag -> what it means for the two scores when it differs
    FINGERPRINT_TAG: "validated on other data",
    HORIZON_TAG: "validated at another horizon",
    VAL_WINDOWS_TAG: "validated on other windows",
    VAL_STEP_TAG: "validated on other windows",
    METRIC_TAG: "scored on another metric",
}
