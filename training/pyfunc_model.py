"""MLflow "model from code": the forecaster as a pyfunc, loaded from safetensors + config JSON.

MLflow executes this file when the model is loaded (`mlflow.pyfunc.load_model`,
`mlflow.models serve`), so nothing is unpickled: the weights are read with safetensors and the
architecture is rebuilt from the saved `ModelConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.pyfunc import PythonModel, PythonModelContext

from stackcast.models import DataContract, StackedRNNForecaster, load_data_contract, load_model_dir
from stackcast.models.contract import MODEL_DIR_ARTIFACT


class ForecasterPyfunc(PythonModel):  # type: ignore[misc]
    """Raw windows (n_series, input_size) in, raw-scale forecasts (n_series, horizon) out."""

    def load_context(self, context: PythonModelContext) -> None:
        """Rebuild the model from the logged config and weights (CPU); read its data contract."""
        directory = Path(context.artifacts[MODEL_DIR_ARTIFACT])
        self.model: StackedRNNForecaster = load_model_dir(directory)
        self.data_contract: DataContract | None = load_data_contract(directory)

    # np.ndarray is a hint MLflow leaves alone: the logged signature stays the only schema.
    def predict(
        self,
        context: PythonModelContext,
        model_input: np.ndarray,
        params: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Forecast each row of `model_input` (array or DataFrame of windows)."""
        x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        with torch.inference_mode():
            forecast: np.ndarray = self.model(x).numpy()
        return forecast


mlflow.models.set_model(ForecasterPyfunc())
