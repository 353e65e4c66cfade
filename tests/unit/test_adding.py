"""The adding problem: two marked values, one in each half, and their sum as the target."""

from __future__ import annotations

import pytest
import torch

from stackcast.models import StackedRNNForecaster
from stackcast.training.adding import BASELINE_MSE, adding_model_config, adding_problem


def test_each_sequence_marks_one_value_in_each_half_and_targets_their_sum() -> None:
    x, y = adding_problem(500, 20, seed=3)
    assert x.shape == (500, 40) and y.shape == (500, 1)
    pairs = x.reshape(500, 20, 2)  # (value, marker) per step
    values, markers = pairs[..., 0], pairs[..., 1]
    assert torch.equal(markers.sum(dim=1), torch.full((500,), 2.0))
    assert torch.equal(markers[:, :10].sum(dim=1), torch.ones(500))  # one in the first half
    torch.testing.assert_close((values * markers).sum(dim=1, keepdim=True), y)
    assert values.min() >= 0 and values.max() <= 1


def test_predicting_the_mean_scores_the_baseline_and_seeds_repeat() -> None:
    x, y = adding_problem(20_000, 10, seed=0)
    assert float(((y - 1.0) ** 2).mean()) == pytest.approx(BASELINE_MSE, rel=0.03)
    again, _ = adding_problem(20_000, 10, seed=0)
    assert torch.equal(x, again)
    assert not torch.equal(x, adding_problem(20_000, 10, seed=1)[0])


def test_the_forecaster_reads_one_pair_per_step() -> None:
    config = adding_model_config(16, cell="rnn_relu", init="identity", hidden_size=8)
    assert (config.input_size, config.patch_size, config.horizon) == (32, 2, 1)
    states: list[list[torch.Tensor]] = []
    model = StackedRNNForecaster(config)
    x, _ = adding_problem(4, 16, seed=0)
    assert model(x).shape == (4, 1)
    model.forward_normalized(x, states)
    assert len(states[0]) == 16  # one recurrent step per (value, marker) pair
