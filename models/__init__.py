"""Stacked recurrent forecasters in pure PyTorch."""

from stackcast.models.config import GATES, Cell, InitScheme, ModelConfig
from stackcast.models.data_contract import DataContract
from stackcast.models.forecaster import StackedRNNForecaster
from stackcast.models.init import flatten_init_report, init_report, initialize
from stackcast.models.serialization import load_data_contract, load_model_dir, save_model_dir

__all__ = [
    "GATES",
    "Cell",
    "DataContract",
    "InitScheme",
    "ModelConfig",
    "StackedRNNForecaster",
    "flatten_init_report",
    "init_report",
    "initialize",
    "load_data_contract",
    "load_model_dir",
    "save_model_dir",
]
