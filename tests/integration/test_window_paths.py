"""One window policy: training, `evaluate` and the service give the model identical inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.service.api import ForecastAPI
from stackcast.service.loader import ServedModel, VersionInfo
from stackcast.service.schema import ForecastRequest, RequestLimits, set_request_limits
from stackcast.service.settings import load_settings
from stackcast.training.datamodule import SeriesDataModule
from stackcast.training.evaluate import forecast_windows

H = 4
# Histories before the last H points: shorter than the window, exactly it, longer.
LENGTHS = {"short": 11 + H, "exact": 16 + H, "long": 60 + H}


class Recorder:
    """Stands in for the pyfunc: records the windows `evaluate` feeds it."""

    def __init__(self) -> None:
        self.windows: np.ndarray | None = None

    def predict(self, windows: np.ndarray) -> np.ndarray:
        self.windows = np.asarray(windows)
        return np.zeros((len(windows), H))


def _series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.uniform(10, 20, n).astype(np.float32) for k, n in LENGTHS.items()}


def _service_windows(config: ModelConfig, histories: list[np.ndarray], tmp: Path) -> np.ndarray:
    limits = RequestLimits(
        input_size=config.input_size,
        max_horizon=H,
        min_history=config.season_length or 1,
        max_series=16,
        max_history_length=1000,
    )
    set_request_limits(limits)
    api = ForecastAPI(load_settings(), limits, tmp)
    api.target_device = torch.device("cpu")
    api.served = ServedModel(StackedRNNForecaster(config), VersionInfo("m", "1", "r", {}))
    body: dict[str, Any] = {"series": [{"history": h.tolist()} for h in histories]}
    batch = api.batch([ForecastRequest.model_validate(body)])
    return batch.windows.numpy()


@pytest.mark.parametrize("padding", ["mask", "season"])
def test_training_evaluate_and_serving_build_identical_inputs(padding: str, tmp_path: Path) -> None:
    config = ModelConfig(input_size=16, horizon=H, patch_size=4, season_length=4, padding=padding)
    series = _series()
    if padding == "season":  # season-padded models validate full windows only
        series = {k: v for k, v in series.items() if k != "short"}
    histories = [v[:-H] for v in series.values()]

    training = SeriesDataModule(series, model=config, batch_size=8, seasonality=1).val_x.numpy()
    recorder = Recorder()
    forecast_windows(recorder, histories, config)  # type: ignore[arg-type]
    serving = _service_windows(config, histories, tmp_path)

    assert recorder.windows is not None
    np.testing.assert_array_equal(training, recorder.windows)  # NaN == NaN here
    np.testing.assert_array_equal(training, serving)
    np.testing.assert_array_equal(training[-1], histories[-1][-16:])  # long: cropped
    if padding == "mask":
        assert np.isnan(training[0]).sum() == 16 - 11  # short: NaN-padded


def test_service_pads_short_histories_as_the_model_was_trained(tmp_path: Path) -> None:
    config = ModelConfig(input_size=16, horizon=H, season_length=4, padding="season")
    short = np.arange(1, 9, dtype=np.float32)  # 8 points: two seasons
    window = _service_windows(config, [short], tmp_path)[0]
    np.testing.assert_array_equal(window[-8:], short)
    np.testing.assert_array_equal(window[:8], np.tile(short[:4], 2))  # its first season, in phase
