"""Patching (several points per recurrent step) and the seasonal-naive skip."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.module import seasonal_scale


def test_patches_shorten_the_recurrence() -> None:
    model = StackedRNNForecaster(
        ModelConfig(input_size=96, patch_size=24, hidden_size=8, num_layers=3, horizon=12)
    )
    outputs = model.encode(torch.rand(5, 96))
    assert [o.shape for o in outputs] == [(5, 4, 8)] * 3  # 96 / 24 = 4 recurrent steps
    assert model.layers[0].input_size == 24
    assert model(torch.rand(5, 96) + 1).shape == (5, 12)


def test_patch_must_divide_the_window() -> None:
    with pytest.raises(ValidationError, match="multiple of patch_size"):
        ModelConfig(input_size=100, patch_size=24)


def test_patch_keeps_time_order_within_each_step() -> None:
    model = StackedRNNForecaster(ModelConfig(input_size=6, patch_size=3, hidden_size=4, horizon=2))
    z = torch.arange(12.0).reshape(2, 6)
    first_step = z.reshape(2, -1, 3)[:, 0]
    assert torch.equal(first_step, torch.tensor([[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]]))
    assert len(model.encode(z)[0][0]) == 2


def test_seasonal_skip_adds_the_seasonal_naive_forecast() -> None:
    model = StackedRNNForecaster(
        ModelConfig(input_size=8, horizon=10, season_length=4, hidden_size=4)
    )
    with torch.no_grad():  # silence the network: only the seasonal-naive path remains
        model.head.weight.zero_()
        model.head.bias.zero_()
    x = torch.tensor([[5.0, 6.0, 7.0, 8.0, 10.0, 20.0, 30.0, 40.0]])
    expected = torch.tensor([[10.0, 20.0, 30.0, 40.0] * 2 + [10.0, 20.0]])  # last season, tiled
    torch.testing.assert_close(model(x), expected)


def test_seasonal_skip_needs_a_full_season() -> None:
    with pytest.raises(ValidationError, match="season_length"):
        ModelConfig(input_size=12, season_length=24)


def test_scale_equivariance_holds_with_patches_and_skip() -> None:
    torch.manual_seed(0)
    config = ModelConfig(input_size=48, patch_size=24, horizon=24, season_length=24, hidden_size=8)
    model = StackedRNNForecaster(config).double().eval()
    x = torch.rand(3, 48, dtype=torch.float64) * 100 + 1
    torch.testing.assert_close(model(7.0 * x), 7.0 * model(x), rtol=1e-4, atol=1e-6)


def test_seasonal_scale_is_the_window_mase_denominator() -> None:
    z = torch.tensor([[1.0, 2.0, 1.0, 4.0]])  # lag-2 differences: |1-1|, |4-2| -> mean 1.0
    torch.testing.assert_close(seasonal_scale(z, 2), torch.tensor([[1.0]]))
    flat = torch.ones(1, 6)  # no seasonal variation: capped, not zero
    assert float(seasonal_scale(flat, 2)) > 0
    short = torch.tensor([[1.0, 3.0]])  # no full season: lag 1
    torch.testing.assert_close(seasonal_scale(short, 24), torch.tensor([[2.0]]))
