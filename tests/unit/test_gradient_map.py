"""The gradient map measures the total dL/dh_t, and the verdict reads it with its thresholds."""

from __future__ import annotations

import itertools
import struct
from io import BytesIO

import matplotlib.pyplot as plt
import pytest
import torch

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.gradient_figure import gradient_figure
from stackcast.training.gradient_html import gradient_page, gradient_plot
from stackcast.training.gradient_report import map_document
from stackcast.training.telemetry import GradientMap, judge

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


@pytest.mark.parametrize(
    ("cell", "layers", "residual"), list(itertools.product(CELLS, (1, 3), (False, True)))
)
def test_step_by_step_encoding_is_the_fused_encoding(
    cell: str, layers: int, residual: bool
) -> None:
    torch.manual_seed(0)
    config = ModelConfig(
        cell=cell, input_size=12, horizon=3, hidden_size=6, num_layers=layers, residual=residual
    )
    model = StackedRNNForecaster(config)
    z = torch.randn(4, 12)
    states: list[list[torch.Tensor]] = []
    fused, stepped = model.encode(z), model.encode(z, states)
    for a, b in zip(fused, stepped, strict=True):
        torch.testing.assert_close(a, b)
    assert [len(layer) for layer in states] == [12] * layers
    assert all(h.shape == (4, 6) for layer in states for h in layer)


def test_gradient_reaching_each_hidden_state_is_the_total_derivative() -> None:
    """Against a hand-written tanh recurrence: the path back through time is included."""
    torch.manual_seed(1)
    config = ModelConfig(cell="rnn_tanh", input_size=8, horizon=2, hidden_size=5, num_layers=1)
    model = StackedRNNForecaster(config)
    rnn = model.layers[0]
    z = torch.randn(3, 8)
    states: list[list[torch.Tensor]] = []
    loss = model.forward_normalized(z, states).pow(2).sum()
    measured = torch.autograd.grad(loss, states[0])

    w_ih, w_hh = rnn.weight_ih_l0, rnn.weight_hh_l0
    bias = rnn.bias_ih_l0 + rnn.bias_hh_l0
    hs, h = [], torch.zeros(3, 5)
    for t in range(8):
        h = torch.tanh(z[:, t : t + 1] @ w_ih.T + h @ w_hh.T + bias)
        hs.append(h)
    manual = model.head(hs[-1]).pow(2).sum()
    expected = torch.autograd.grad(manual, hs)
    for got, want in zip(measured, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert expected[0].abs().sum() > 0  # the first step does get gradient, through time


def _map(bottom: tuple[float, float], top: tuple[float, float]) -> GradientMap:
    return GradientMap(0, [[bottom[0], 1.0, bottom[1]], [top[0], 1.0, top[1]]])


@pytest.mark.parametrize(
    ("bottom", "top", "label"),
    [
        ((0.5, 1.0), (0.2, 1.0), "healthy"),
        ((1e-5, 1.0), (0.5, 1.0), "vanishing"),
        ((0.5, 1.0), (1e-4, 1.0), "vanishing"),
        ((1e4, 1.0), (0.5, 1.0), "exploding"),
        ((1.0, 0.0), (1.0, 1.0), "exploding"),  # nothing reaches the last step: infinite ratio
        ((0.0, 0.0), (0.0, 0.0), "vanishing"),  # nothing flows at all (dead ReLUs)
    ],
)
def test_verdict_thresholds(
    bottom: tuple[float, float], top: tuple[float, float], label: str
) -> None:
    verdict = judge([_map(bottom, top)] * 3, None, vanishing_ratio=1e-3, exploding_ratio=1e3)
    assert verdict.label == label
    assert "median dL/dh_1 / dL/dh_T over 3 maps" in verdict.reason


def test_a_non_finite_loss_is_exploding_whatever_the_maps_say() -> None:
    verdict = judge([_map((0.5, 1), (0.5, 1))], "loss nan at step 7", 1e-3, 1e3)
    assert verdict.label == "exploding" and verdict.reason.startswith("loss nan at step 7")


def test_median_over_the_run_ignores_a_single_spike() -> None:
    maps = [_map((0.5, 1), (0.5, 1))] * 4 + [_map((1e6, 1), (0.5, 1))]
    assert judge(maps, None, 1e-3, 1e3).label == "healthy"


PREVIEW_PX = 550  # MLflow's artifact preview pane in a 1440 px wide window


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return int(width), int(height)


@pytest.mark.parametrize("layers", [1, 3])
def test_the_figure_fits_the_preview_with_a_row_per_layer_and_covers_every_map(
    layers: int,
) -> None:
    rows = [[0.1 * (k + 1), 1.0, 2.0] for k in range(layers)]
    maps = [GradientMap(step, rows) for step in range(0, 500, 50)]
    verdict = judge(maps, None, 1e-3, 1e3)
    fig = gradient_figure(maps, "t", verdict.vanishing_ratio, verdict.exploding_ratio)
    buffer = BytesIO()
    fig.savefig(buffer)  # as mlflow.log_figure saves it: at the figure's own dpi
    panels = [ax for ax in fig.axes if ax.get_title(loc="left")]  # not the colour bar
    titles = [ax.get_title(loc="left") for ax in panels]
    heatmap_rows = [ax.get_images()[0].get_array().shape[0] for ax in panels[:-1]]
    plt.close(fig)
    width, height = _png_size(buffer.getvalue())
    assert width <= PREVIEW_PX < width + height  # one column, shown at its natural size
    assert len(panels) == layers + 1  # a panel per layer, then the decay ratios
    assert titles[0].startswith(f"layer {layers - 1}") and titles[-1].startswith("decay ratio")
    assert heatmap_rows == [len(maps)] * layers  # every map of the run, not a sample


def test_the_document_says_which_steps_it_covers() -> None:
    maps = [GradientMap(step, [[0.5, 1.0]]) for step in (0, 50, 100)]
    document = map_document(maps, judge(maps, None, 1e-3, 1e3))
    assert document["covers"] == {"first_step": 0, "last_step": 100, "maps": 3}
    assert [m["step"] for m in document["maps"]] == [0, 50, 100]
    assert "over 3 maps (train steps 0 to 100)" in document["reason"]


def test_the_html_page_is_self_contained_with_a_heatmap_per_layer_over_every_map() -> None:
    rows = [[0.5, 1.0, float("inf")], [0.0, 0.5, 1.0]]  # a non-finite and a zero norm
    maps = [GradientMap(step, rows) for step in range(0, 300, 50)]
    fig = gradient_plot(maps, "t", 1e-3, 1e3)
    heatmaps = [trace for trace in fig.data if trace.type == "heatmap"]
    assert [len(h.z) for h in heatmaps] == [len(maps)] * 2  # every map, a panel per layer
    assert list(heatmaps[0].y) == [m.step for m in maps]
    assert fig.layout.width <= PREVIEW_PX
    page = gradient_page(maps, "t", 1e-3, 1e3)
    assert 'id="gradient-map"' in page and "<script src=" not in page  # plotly.js inside
