"""A model trained on positive series forecasts negative, zero-crossing and constant ones sanely.

A small seasonal network is trained (plain torch, fixed seed, a few seconds) on positive noisy
series of many levels, as M4's are, under the default scaling, then asked for series whose level
or sign it never saw. Seasonal naive is exact on them; the reference for the network's own
learned deviation is the same shape shifted up by 20 (a positive series, like its training
data). The same weights under `mean_abs` scaling (identical on every positive training window,
so exactly the model that scaling would have trained) are the counterpart that fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stackcast.models.config import ModelConfig, Scaling
from stackcast.models.forecaster import StackedRNNForecaster

T, H, SEASON = 48, 24, 24

ODD = {  # (level, amplitude of the daily sine)
    "negative": (-5.0, 3.0),
    "zero-crossing": (0.0, 3.0),
    "near-zero level": (0.5, 3.0),
    "constant negative": (-3.0, 0.0),
    "constant zero": (0.0, 0.0),
}


def _positive_batch(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = np.arange(T + H)
    level = rng.uniform(10, 500, (n, 1))
    phase = rng.uniform(0, 7, (n, 1))
    shape = rng.uniform(0.05, 0.9, (n, 1)) * np.sin(2 * np.pi * t / SEASON + phase)
    trend = rng.normal(0, 0.003, (n, 1)) * t
    noise = 0.03 * rng.normal(size=(n, 1)) * rng.normal(size=(n, T + H))
    y = np.abs(level * (1 + shape + trend + noise)) + 1
    return torch.tensor(y[:, :T], dtype=torch.float32), torch.tensor(y[:, T:], dtype=torch.float32)


@pytest.fixture(scope="module")
def trained() -> StackedRNNForecaster:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    config = ModelConfig(input_size=T, horizon=H, hidden_size=16, cell="gru", season_length=SEASON)
    assert config.scaling == "mean_abs_centred"  # the default
    model = StackedRNNForecaster(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        x, y = _positive_batch(rng, 64)
        _, scale = model.window_stats(x)
        loss = ((model(x) - y).abs() / scale).mean()  # scaled MAE
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.double().eval()


def _error(model: StackedRNNForecaster, scaling: Scaling, level: float, amp: float) -> float:
    """Mean absolute error over the horizon after one window of `level + amp sin(...)`."""
    t = np.arange(T + H)
    y = level + amp * np.sin(2 * np.pi * t / SEASON + 0.3)
    config = model.config
    model.config = config.model_copy(update={"scaling": scaling})
    try:
        with torch.no_grad():
            forecast = model(torch.from_numpy(y[None, :T]))[0].numpy()
    finally:
        model.config = config
    return float(np.abs(forecast - y[T:]).mean())


def _reference(model: StackedRNNForecaster, level: float, amp: float) -> float:
    """The error on the same shape shifted up by 20: a positive series like the training data."""
    return _error(model, "mean_abs_centred", level + 20, amp)


@pytest.mark.parametrize("name", ODD)
def test_odd_series_are_forecast_as_well_as_the_same_shape_at_a_positive_level(
    trained: StackedRNNForecaster, name: str
) -> None:
    level, amp = ODD[name]
    error = _error(trained, "mean_abs_centred", level, amp)
    reference = _reference(trained, level, amp)
    assert error <= 1.5 * reference + 1e-6, (error, reference)
    assert error <= 0.1 * max(abs(level), amp, 1.0)  # seasonal naive's is 0: stay near it


@pytest.mark.parametrize("name", ["negative", "constant negative"])
def test_the_same_weights_under_mean_abs_do_not(trained: StackedRNNForecaster, name: str) -> None:
    level, amp = ODD[name]
    assert _error(trained, "mean_abs", level, amp) > 1.5 * _reference(trained, level, amp)
