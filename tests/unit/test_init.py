from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from stackcast.models.config import GATES, ModelConfig
from stackcast.models.forecaster import StackedRNNForecaster
from stackcast.models.init import flatten_init_report, init_report

pytestmark = pytest.mark.unit

GATED_AND_PLAIN = ("lstm", "gru", "rnn_tanh", "rnn_relu")
NON_DEFAULT = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "orthogonal")


def make(seed: int = 0, **overrides: Any) -> StackedRNNForecaster:
    options: dict[str, Any] = {"input_size": 12, "horizon": 5, "hidden_size": 16}
    options.update(overrides)
    torch.manual_seed(seed)
    return StackedRNNForecaster(ModelConfig(**options))


def blocks(weight: torch.Tensor, cell: str) -> dict[str, torch.Tensor]:
    """Gate name -> (H, in) row block, in GATES order."""
    names = GATES[cell]
    return dict(zip(names, weight.detach().chunk(len(names), dim=0), strict=True))


def variance(t: torch.Tensor) -> float:
    return float(t.double().var())


# --- orthogonal ----------------------------------------------------------------------------


@pytest.mark.parametrize("cell", GATED_AND_PLAIN)
def test_orthogonal_makes_every_recurrent_gate_block_orthogonal(cell: str) -> None:
    hidden = 32
    model = make(cell=cell, hidden_size=hidden, num_layers=2, init="orthogonal")
    eye = torch.eye(hidden)
    for layer in model.layers:
        gate_blocks = blocks(layer.weight_hh_l0, cell)
        assert len(gate_blocks) == len(GATES[cell])
        for name, w in gate_blocks.items():
            assert w.shape == (hidden, hidden), name
            torch.testing.assert_close(w @ w.T, eye, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", GATED_AND_PLAIN)
def test_orthogonal_init_report_shows_unit_spectral_radius_and_singular_value(cell: str) -> None:
    report = init_report(make(cell=cell, hidden_size=32, num_layers=2, init="orthogonal"))
    for layer in report["layers"]:
        assert layer["spectral_radius"] == pytest.approx(1.0, abs=1e-4)
        assert layer["max_singular_value"] == pytest.approx(1.0, abs=1e-4)
        for gate in layer["gates"].values():
            assert gate["spectral_radius"] == pytest.approx(1.0, abs=1e-4)
            assert gate["max_singular_value"] == pytest.approx(1.0, abs=1e-4)


def test_default_init_report_spectral_radius_is_not_one() -> None:
    # The report measures the weights: PyTorch's default U(-1/sqrt(H), 1/sqrt(H)) is far from
    # orthogonal (circular law: spectral radius about 1/sqrt(3), largest singular value ~2/sqrt(3)).
    layer = init_report(make(hidden_size=32, init="default"))["layers"][0]
    assert layer["spectral_radius"] < 0.8
    assert layer["max_singular_value"] > 1.05


# --- identity (IRNN) -----------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn_relu", "rnn_tanh"])
def test_identity_sets_recurrent_weight_to_exact_identity_and_biases_to_zero(cell: str) -> None:
    hidden = 16
    model = make(cell=cell, hidden_size=hidden, num_layers=3, init="identity")
    for layer in model.layers:
        assert torch.equal(layer.weight_hh_l0.detach(), torch.eye(hidden))
        assert torch.count_nonzero(layer.bias_ih_l0) == 0
        assert torch.count_nonzero(layer.bias_hh_l0) == 0
        # inputs start tiny (N(0, 1e-3)), so the recurrence dominates
        assert 0 < float(layer.weight_ih_l0.detach().abs().max()) < 1e-2
    report = init_report(model)
    assert [layer["spectral_radius"] for layer in report["layers"]] == pytest.approx([1.0] * 3)


# --- variance of the Xavier / He schemes, per gate block ----------------------------------

VAR_HIDDEN = 256


def expected_variance(scheme: str, fan_in: int, fan_out: int) -> float:
    if scheme.startswith("xavier"):
        return 2.0 / (fan_in + fan_out)
    return 2.0 / fan_in  # He / Kaiming, fan_in mode, ReLU gain


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("scheme", ["xavier_uniform", "xavier_normal", "he_uniform", "he_normal"])
def test_scheme_variance_holds_for_each_gate_block(cell: str, scheme: str) -> None:
    h = VAR_HIDDEN
    model = make(cell=cell, hidden_size=h, num_layers=2, horizon=48, init=scheme)
    want = expected_variance(scheme, h, h)
    # (H, H) blocks: layer 0's and 1's recurrent weights, layer 1's input weights
    square = [
        *blocks(model.layers[0].weight_hh_l0, cell).items(),
        *blocks(model.layers[1].weight_hh_l0, cell).items(),
        *blocks(model.layers[1].weight_ih_l0, cell).items(),
    ]
    for name, w in square:
        assert w.shape == (h, h)
        assert variance(w) == pytest.approx(want, rel=0.1), name
        assert abs(float(w.double().mean())) < 0.1 * math.sqrt(want), name
    # layer 0's input blocks are (H, 1): fan_in 1, fan_out H. Only H samples each, so a looser
    # tolerance; still far tighter than the factor G a stacked (G*H, 1) fan_out would give.
    want_in = expected_variance(scheme, 1, h)
    for name, w in blocks(model.layers[0].weight_ih_l0, cell).items():
        assert w.shape == (h, 1)
        assert variance(w) == pytest.approx(want_in, rel=0.3), name
    # the head follows the same rule: (horizon, H) -> fan_in H, fan_out horizon
    head = model.head.weight.detach()
    assert variance(head) == pytest.approx(expected_variance(scheme, h, 48), rel=0.1)


@pytest.mark.parametrize("scheme", ["xavier_uniform", "he_uniform"])
def test_uniform_schemes_respect_their_bound(scheme: str) -> None:
    h = VAR_HIDDEN
    model = make(cell="gru", hidden_size=h, num_layers=1, init=scheme)
    bound = math.sqrt(3.0 * expected_variance(scheme, h, h))
    for w in blocks(model.layers[0].weight_hh_l0, "gru").values():
        assert float(w.abs().max()) <= bound + 1e-6
        assert float(w.abs().max()) > 0.95 * bound


# --- biases --------------------------------------------------------------------------------


def all_biases(model: StackedRNNForecaster) -> list[torch.Tensor]:
    out = []
    for layer in model.layers:
        out += [layer.bias_ih_l0, layer.bias_hh_l0]
    return [*out, model.head.bias]


@pytest.mark.parametrize("cell", GATED_AND_PLAIN)
@pytest.mark.parametrize("scheme", NON_DEFAULT)
def test_non_default_schemes_zero_every_bias(cell: str, scheme: str) -> None:
    model = make(cell=cell, num_layers=2, init=scheme)
    for bias in all_biases(model):
        assert torch.count_nonzero(bias) == 0


@pytest.mark.parametrize("cell", GATED_AND_PLAIN)
def test_default_keeps_pytorch_uniform_bound(cell: str) -> None:
    h = 64
    model = make(cell=cell, hidden_size=h, num_layers=2, init="default")
    bound = 1.0 / math.sqrt(h)
    for layer in model.layers:
        for name, p in layer.named_parameters():
            values = p.detach().abs()
            assert float(values.max()) <= bound + 1e-7, name
        # the weights really fill that range (thousands of samples reach near the bound)
        assert float(layer.weight_hh_l0.detach().abs().max()) > 0.95 * bound
        # ...and the biases are not zeroed
        assert torch.count_nonzero(layer.bias_ih_l0) > 0
        assert torch.count_nonzero(layer.bias_hh_l0) > 0


# --- LSTM forget bias ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["default", "orthogonal", "xavier_uniform"])
def test_forget_bias_sets_forget_rows_of_every_layer(scheme: str) -> None:
    h = 8
    model = make(cell="lstm", hidden_size=h, num_layers=3, init=scheme, forget_bias=1.0)
    for layer in model.layers:
        b_ih = layer.bias_ih_l0.detach()
        b_hh = layer.bias_hh_l0.detach()
        assert torch.equal(b_ih[h : 2 * h], torch.ones(h))
        assert torch.equal(b_hh[h : 2 * h], torch.zeros(h))
        # the other gates are left to the scheme
        others_ih = torch.cat([b_ih[:h], b_ih[2 * h :]])
        if scheme == "default":
            assert torch.count_nonzero(others_ih) > 0
        else:
            assert torch.count_nonzero(others_ih) == 0


def test_forget_bias_value_is_used_as_given() -> None:
    h = 8
    model = make(cell="lstm", hidden_size=h, num_layers=2, init="orthogonal", forget_bias=-0.5)
    for layer in model.layers:
        assert torch.equal(layer.bias_ih_l0.detach()[h : 2 * h], torch.full((h,), -0.5))


def test_no_forget_bias_leaves_forget_rows_to_the_scheme() -> None:
    h = 8
    model = make(cell="lstm", hidden_size=h, num_layers=2, init="orthogonal")
    for layer in model.layers:
        assert torch.count_nonzero(layer.bias_ih_l0) == 0


# --- init_report structure -----------------------------------------------------------------


@pytest.mark.parametrize("cell", GATED_AND_PLAIN)
def test_init_report_structure(cell: str) -> None:
    model = make(cell=cell, num_layers=3, init="xavier_uniform")
    report = init_report(model)
    assert set(report) == {"layers", "head_weight_norm"}
    assert len(report["layers"]) == 3
    for k, (entry, layer) in enumerate(zip(report["layers"], model.layers, strict=True)):
        assert entry["layer"] == k
        assert list(entry["gates"]) == list(GATES[cell])
        assert entry["weight_ih_norm"] == pytest.approx(float(layer.weight_ih_l0.detach().norm()))
        assert entry["weight_hh_norm"] == pytest.approx(float(layer.weight_hh_l0.detach().norm()))
        gate_stats = entry["gates"].values()
        assert entry["spectral_radius"] == max(g["spectral_radius"] for g in gate_stats)
        assert entry["max_singular_value"] == max(g["max_singular_value"] for g in gate_stats)
        for g in gate_stats:
            # |largest eigenvalue| never exceeds the largest singular value
            assert g["spectral_radius"] <= g["max_singular_value"] + 1e-9
    assert report["head_weight_norm"] == pytest.approx(float(model.head.weight.detach().norm()))


def test_init_report_gate_statistics_match_each_block() -> None:
    h = 8
    model = make(cell="gru", hidden_size=h, num_layers=1)
    with torch.no_grad():
        w = model.layers[0].weight_hh_l0
        w.zero_()
        w[2 * h : 3 * h] = 3.0 * torch.eye(h)  # "new" gate only
    gates = init_report(model)["layers"][0]["gates"]
    assert gates["new"]["spectral_radius"] == pytest.approx(3.0)
    assert gates["new"]["max_singular_value"] == pytest.approx(3.0)
    assert gates["reset"]["max_singular_value"] == pytest.approx(0.0)
    assert gates["update"]["max_singular_value"] == pytest.approx(0.0)


def test_flatten_init_report_keys_and_values() -> None:
    model = make(cell="lstm", num_layers=2, init="orthogonal")
    report = init_report(model)
    flat = flatten_init_report(report)
    expected = {"init/head_weight_norm"}
    for k in (0, 1):
        expected |= {
            f"init/l{k}/weight_ih_norm",
            f"init/l{k}/weight_hh_norm",
            f"init/l{k}/weight_hh_spectral_radius",
            f"init/l{k}/weight_hh_max_singular_value",
        }
    assert set(flat) == expected
    assert all(isinstance(v, float) for v in flat.values())
    assert flat["init/l1/weight_hh_spectral_radius"] == report["layers"][1]["spectral_radius"]
    assert flat["init/l0/weight_hh_max_singular_value"] == report["layers"][0]["max_singular_value"]
    assert flat["init/head_weight_norm"] == report["head_weight_norm"]

    prefixed = flatten_init_report(report, prefix="start")
    assert set(prefixed) == {key.replace("init/", "start/", 1) for key in expected}
