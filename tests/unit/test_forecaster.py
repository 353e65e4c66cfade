from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from stackcast.models.config import ModelConfig
from stackcast.models.forecaster import StackedRNNForecaster

pytestmark = pytest.mark.unit

T, H_OUT, HIDDEN, BATCH = 12, 5, 8, 3
CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def make(seed: int = 0, **overrides: Any) -> StackedRNNForecaster:
    options: dict[str, Any] = {"input_size": T, "horizon": H_OUT, "hidden_size": HIDDEN}
    options.update(overrides)
    torch.manual_seed(seed)
    return StackedRNNForecaster(ModelConfig(**options))


def windows(batch: int = BATCH, seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # positive, trending, noisy raw values: not already normalized
    base = torch.linspace(5.0, 9.0, T, dtype=dtype)
    return base + torch.rand(batch, T, generator=g, dtype=dtype) * 3.0


@pytest.mark.parametrize(
    ("cell", "num_layers", "residual"),
    list(itertools.product(CELLS, (1, 2, 3), (False, True))),
)
def test_forward_gives_one_forecast_of_horizon_steps_per_window(
    cell: str, num_layers: int, residual: bool
) -> None:
    model = make(cell=cell, num_layers=num_layers, residual=residual).eval()
    with torch.no_grad():
        out = model(windows())
    assert out.shape == (BATCH, H_OUT)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("cell", CELLS)
def test_encode_returns_one_sequence_per_layer(cell: str) -> None:
    model = make(cell=cell, num_layers=3).eval()
    with torch.no_grad():
        outputs = model.encode(torch.randn(BATCH, T))
    assert len(outputs) == 3
    for out in outputs:
        assert out.shape == (BATCH, T, HIDDEN)


def test_layer_input_widths_are_one_then_hidden_size() -> None:
    model = make(num_layers=3)
    assert [layer.input_size for layer in model.layers] == [1, HIDDEN, HIDDEN]
    assert all(layer.hidden_size == HIDDEN for layer in model.layers)
    assert all(layer.num_layers == 1 for layer in model.layers)


@pytest.mark.parametrize("residual", [False, True])
def test_each_layer_consumes_the_previous_layers_output_sequence(residual: bool) -> None:
    model = make(num_layers=3, residual=residual).eval()
    z = torch.randn(BATCH, T)
    with torch.no_grad():
        outputs = model.encode(z)
        bottom, _ = model.layers[0](z.unsqueeze(-1))
        torch.testing.assert_close(outputs[0], bottom)
        for k in (1, 2):
            expected, _ = model.layers[k](outputs[k - 1])
            if residual:
                expected = expected + outputs[k - 1]
            torch.testing.assert_close(outputs[k], expected)


def test_changing_bottom_layer_weights_changes_the_forecast() -> None:
    model = make(num_layers=3).eval()
    x = windows()
    with torch.no_grad():
        before = model(x)
        model.layers[0].weight_hh_l0.mul_(-1.5)
        after = model(x)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize(
    "shape",
    [(T,), (BATCH, T + 1), (BATCH, T - 1), (BATCH, T, 1), (T, BATCH)],
)
def test_wrong_input_shape_raises_value_error_naming_expected_shape(shape: tuple[int, ...]) -> None:
    model = make()
    with pytest.raises(ValueError, match=rf"expected input \(batch, {T}\)") as err:
        model(torch.zeros(*shape))
    assert str(tuple(shape)) in str(err.value)


@pytest.mark.parametrize("cell", CELLS)
def test_residual_changes_output_given_identical_weights(cell: str) -> None:
    plain = make(cell=cell, num_layers=2, residual=False).eval()
    resid = make(cell=cell, num_layers=2, residual=True, seed=99).eval()
    resid.load_state_dict(plain.state_dict())
    x = windows()
    with torch.no_grad():
        assert not torch.allclose(plain(x), resid(x))


def test_residual_has_no_effect_with_a_single_layer() -> None:
    # residual joins layers >= 2 only: one layer has nothing to add to
    plain = make(num_layers=1, residual=False).eval()
    resid = make(num_layers=1, residual=True, seed=99).eval()
    resid.load_state_dict(plain.state_dict())
    x = windows()
    with torch.no_grad():
        assert torch.equal(plain(x), resid(x))


def test_dropout_is_active_in_train_mode_only() -> None:
    model = make(num_layers=3, dropout=0.5)
    x = windows(batch=8)
    with torch.no_grad():
        model.train()
        torch.manual_seed(1)
        first = model(x)
        torch.manual_seed(2)
        second = model(x)
        assert not torch.allclose(first, second)

        model.eval()
        torch.manual_seed(1)
        eval_first = model(x)
        torch.manual_seed(2)
        eval_second = model(x)
    assert torch.equal(eval_first, eval_second)


def test_eval_mode_output_matches_the_same_weights_without_dropout() -> None:
    with_dropout = make(num_layers=2, dropout=0.5).eval()
    without = make(num_layers=2, dropout=0.0, seed=5).eval()
    without.load_state_dict(with_dropout.state_dict())
    x = windows()
    with torch.no_grad():
        assert torch.equal(with_dropout(x), without(x))
