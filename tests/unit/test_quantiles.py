"""Non-crossing quantile outputs and the pinball loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from stackcast.models.quantiles import monotone
from stackcast.training.pinball import pinball_loss

pytestmark = pytest.mark.unit

LEVELS = torch.tensor([0.1, 0.5, 0.9])


@settings(max_examples=80, deadline=None)
@given(
    raw=arrays(np.float64, (4, 3, 5), elements=st.floats(-1e3, 1e3)),
    anchor=st.integers(0, 4),
)
def test_quantiles_never_cross_on_any_raw_output(raw: np.ndarray, anchor: int) -> None:
    out = monotone(torch.from_numpy(raw), anchor)
    assert out.shape == raw.shape
    assert (out.diff(dim=-1) >= 0).all()
    torch.testing.assert_close(out[..., anchor], torch.from_numpy(raw[..., anchor]))


def test_every_raw_column_gets_a_gradient() -> None:
    raw = torch.randn(2, 3, 5, requires_grad=True, generator=torch.Generator().manual_seed(0))
    monotone(raw, 2).sum().backward()
    assert raw.grad is not None and (raw.grad.abs().sum(dim=(0, 1)) > 0).all()


def test_anchor_must_be_a_column() -> None:
    with pytest.raises(IndexError, match="anchor 3 outside the 3"):
        monotone(torch.zeros(1, 3), 3)


def test_pinball_by_hand() -> None:
    pred = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])  # (1, 2, 3)
    y = torch.tensor([[2.5, -1.0]])
    # step 1, e = 1.5, 0.5, -0.5: 0.1 x 1.5, 0.5 x 0.5, (0.9 - 1) x -0.5 -> 0.15, 0.25, 0.05
    # step 2, e = -1 for all: 0.9, 0.5, 0.1
    want = (0.15 + 0.25 + 0.05 + 0.9 + 0.5 + 0.1) / 6
    assert pinball_loss(pred, y, LEVELS).item() == pytest.approx(want)


def test_the_median_level_is_half_the_absolute_error() -> None:
    g = torch.Generator().manual_seed(1)
    pred, y = torch.randn(8, 4, 1, generator=g), torch.randn(8, 4, generator=g)
    got = pinball_loss(pred, y, torch.tensor([0.5]))
    torch.testing.assert_close(got, 0.5 * (pred[..., 0] - y).abs().mean())


def test_its_minimiser_is_the_quantile() -> None:
    y = torch.arange(1.0, 101.0)[None, :]  # 1 .. 100
    candidates = torch.linspace(0, 101, 1011)
    losses = [
        pinball_loss(torch.full((1, 100, 1), float(c)), y, torch.tensor([0.9])) for c in candidates
    ]
    best = float(candidates[int(torch.stack(losses).argmin())])
    assert 90.0 <= best <= 91.0


@pytest.mark.parametrize(
    ("pred", "levels", "message"),
    [
        (torch.zeros(1, 2, 2), LEVELS, "must be y"),
        (torch.zeros(1, 2, 3), torch.tensor([0.0, 0.5, 0.9]), r"in \(0, 1\)"),
    ],
)
def test_bad_shapes_and_levels_are_refused(
    pred: torch.Tensor, levels: torch.Tensor, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pinball_loss(pred, torch.zeros(1, 2), levels)
