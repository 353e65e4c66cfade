"""Weights-only persistence: safetensors + the config JSON. Nothing here unpickles."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from stackcast.models.config import ModelConfig
from stackcast.models.contract import CONFIG_FILE, WEIGHTS_FILE
from stackcast.models.forecaster import StackedRNNForecaster


def save_model_dir(model: StackedRNNForecaster, directory: Path) -> Path:
    """Write `weights.safetensors` and `model_config.json` into `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_text(model.config.model_dump_json(indent=2))
    return directory


def load_model_dir(directory: Path, device: str | torch.device = "cpu") -> StackedRNNForecaster:
    """Rebuild the model from its config and load its weights (no pickle), in eval mode."""
    config = ModelConfig.model_validate_json((directory / CONFIG_FILE).read_text())
    model = StackedRNNForecaster(config)
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE), device=str(device)))
    return model.to(device).eval()
