"""Per-window scaling: equivariance properties and where odd windows land."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from stackcast.models.config import ModelConfig, Scaling
from stackcast.models.forecaster import StackedRNNForecaster, window_stats

T, SEASON = 48, 24
SCALED: tuple[Scaling, ...] = tuple(s for s in get_args(Scaling) if s != "none")

# Windows of any sign and level whose scales stay well above the 1e-6 floor (an all-zero or
# constant window is its own case below): times any factor >= 1e-3 they still do.
_window = arrays(
    np.float64,
    (2, T),
    elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
).filter(lambda w: bool((np.abs(w).mean(axis=1) > 1e-2).all() and (w.std(axis=1) > 1e-2).all()))
_positive_factor = st.floats(1e-3, 1e3)


def _model(scaling: Scaling) -> StackedRNNForecaster:
    torch.manual_seed(0)
    config = ModelConfig(
        input_size=T, horizon=6, hidden_size=8, num_layers=2, season_length=SEASON, scaling=scaling
    )
    return StackedRNNForecaster(config).double().eval()


MODELS = {s: _model(s) for s in get_args(Scaling)}


def test_every_mode_is_covered() -> None:
    assert set(SCALED) == {"mean_abs_centred", "mean_abs", "standard"}


@pytest.mark.parametrize("scaling", SCALED)
@settings(max_examples=60, deadline=None)
@given(window=_window, c=_positive_factor)
def test_forecast_is_equivariant_to_a_positive_factor(
    scaling: Scaling, window: np.ndarray, c: float
) -> None:
    x = torch.from_numpy(window)
    model = MODELS[scaling]
    with torch.no_grad():
        base = model(x)
        torch.testing.assert_close(model(c * x), c * base, rtol=1e-9, atol=1e-9 * c)


@settings(max_examples=60, deadline=None)
@given(window=_window, b=st.floats(-1e4, 1e4))
def test_standard_forecast_is_equivariant_to_an_added_constant(
    window: np.ndarray, b: float
) -> None:
    x = torch.from_numpy(window)
    model = MODELS["standard"]
    with torch.no_grad():
        torch.testing.assert_close(model(x + b), model(x) + b, rtol=1e-9, atol=1e-7)


def test_without_scaling_the_forecast_is_not_equivariant() -> None:
    # The counterpart: equivariance comes from the scaling, not from the network.
    x = torch.linspace(5, 9, T, dtype=torch.float64)[None]
    model = MODELS["none"]
    with torch.no_grad():
        assert not torch.allclose(model(10 * x), 10 * model(x), rtol=1e-3)


@settings(max_examples=60, deadline=None)
@given(
    window=arrays(np.float64, (3, T), elements=st.floats(1e-3, 1e5)),
)
def test_centred_is_mean_abs_on_positive_windows(window: np.ndarray) -> None:
    x = torch.from_numpy(window)
    for got, want in zip(
        window_stats(x, "mean_abs_centred"), window_stats(x, "mean_abs"), strict=True
    ):
        assert torch.equal(got, want)


@settings(max_examples=60, deadline=None)
@given(window=_window)
def test_a_centred_window_has_mean_one(window: np.ndarray) -> None:
    x = torch.from_numpy(window)
    loc, scale = window_stats(x, "mean_abs_centred")
    z = (x - loc) / scale
    torch.testing.assert_close(z.mean(dim=1), torch.ones(2, dtype=torch.float64))


def _seasonal(level: float, amplitude: float) -> torch.Tensor:
    t = torch.arange(T, dtype=torch.float64)
    return level + amplitude * torch.sin(2 * torch.pi * t / SEASON)


ODD = {
    "negative": _seasonal(-5, 3),
    "zero-crossing": _seasonal(0, 3),
    "near-zero level": _seasonal(0.5, 3),
    "constant negative": _seasonal(-3, 0),
    "constant zero": _seasonal(0, 0),
}


def _normalized(scaling: Scaling, windows: torch.Tensor) -> torch.Tensor:
    loc, scale = window_stats(windows, scaling)
    return (windows - loc) / scale


@pytest.mark.parametrize("name", ODD)
def test_odd_windows_land_at_the_level_of_positive_ones_when_centred(name: str) -> None:
    # Positive seasonal windows of every level, relative amplitude up to 100%: what a model
    # trained on M4-like data has seen. Their normalized mean is 1 under mean_abs.
    positive = torch.stack(
        [_seasonal(level, level * rel) for level in (1, 10, 1e3) for rel in (0.0, 0.3, 1.0)]
    )
    seen = _normalized("mean_abs", positive)
    torch.testing.assert_close(seen.mean(dim=1), torch.ones(9, dtype=torch.float64))
    odd = ODD[name][None]
    centred = _normalized("mean_abs_centred", odd)
    torch.testing.assert_close(centred.mean(dim=1), torch.ones(1, dtype=torch.float64))
    if not bool((odd > 0).any() and (odd < 0).any()):  # no zero crossing: inside the seen range
        assert seen.min() <= centred.min() and centred.max() <= seen.max()
    if name != "near-zero level" and name != "constant zero":
        # mean_abs leaves them at mean <= 0, where no positive window's mean goes
        assert _normalized("mean_abs", odd).mean() <= 1e-9


def test_an_all_zero_window_forecasts_zero_in_every_mode() -> None:
    zero = torch.zeros(1, T, dtype=torch.float64)
    for scaling, model in MODELS.items():
        with torch.no_grad():
            out = model(zero)
        assert torch.isfinite(out).all()
        if scaling != "none":
            assert out.abs().max() < 1e-4, scaling
