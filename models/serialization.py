"""Weights-only persistence: safetensors + the config JSON. Nothing here unpickles."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from stackcast.models.config import ModelConfig
from stackcast.models.contract import CONFIG_FILE, DATA_CONTRACT_FILE, WEIGHTS_FILE
from stackcast.models.data_contract import DataContract
from stackcast.models.forecaster import StackedRNNForecaster


def save_model_dir(
    model: StackedRNNForecaster, directory: Path, data: DataContract | None = None
) -> Path:
    """Write `weights.safetensors`, `model_config.json` and `data` (if given) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_text(model.config.model_dump_json(indent=2))
    if data is not None:
        (directory / DATA_CONTRACT_FILE).write_text(data.model_dump_json(indent=2))
    return directory


def load_model_dir(directory: Path, device: str | torch.device = "cpu") -> StackedRNNForecaster:
    """Rebuild the model from its config and load its weights (no pickle), in eval mode."""
    config = ModelConfig.model_validate_json((directory / CONFIG_FILE).read_text())
    model = StackedRNNForecaster(config)
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE), device=str(device)))
    return model.to(device).eval()


def load_data_contract(directory: Path) -> DataContract | None:
    """The model's `DataContract`, or None for a version logged before it existed."""
    path = directory / DATA_CONTRACT_FILE
    return DataContract.model_validate_json(path.read_text()) if path.is_file() else None
