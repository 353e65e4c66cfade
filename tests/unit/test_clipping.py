"""The clipping hook changes the real gradients, and reports what it did to them."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.config import OptimConfig
from stackcast.training.module import ForecastModule


def _module_with_gradients() -> tuple[ForecastModule, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = StackedRNNForecaster(ModelConfig(input_size=24, horizon=6, hidden_size=8))
    module = ForecastModule(model, OptimConfig())
    x = torch.rand(16, 24) * 100 + 1
    y = torch.rand(16, 6) * 100 + 1
    module.model_step((x, y))[0].backward()
    return module, torch.optim.AdamW(module.parameters())


def _grad_norm(module: ForecastModule) -> float:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))


def _reported(module: ForecastModule) -> tuple[float, float, float]:
    assert module._clip_stats is not None
    before, after, clipped = module._clip_stats[:3].tolist()
    return before, after, clipped


def test_norm_clipping_scales_the_gradients_to_the_threshold() -> None:
    module, optimizer = _module_with_gradients()
    raw = _grad_norm(module)
    threshold = raw / 10
    module.configure_gradient_clipping(optimizer, threshold, "norm")
    assert _grad_norm(module) == pytest.approx(threshold, rel=1e-4)  # the gradients changed
    assert _reported(module) == pytest.approx((raw, _grad_norm(module), 1.0), rel=1e-4)


def test_norm_clipping_below_the_threshold_leaves_the_gradients_alone() -> None:
    module, optimizer = _module_with_gradients()
    before = [p.grad.clone() for p in module.parameters() if p.grad is not None]
    raw = _grad_norm(module)
    module.configure_gradient_clipping(optimizer, raw * 2, "norm")
    after = [p.grad for p in module.parameters() if p.grad is not None]
    assert all(torch.allclose(a, b, rtol=1e-5) for a, b in zip(after, before, strict=True))
    assert _reported(module) == pytest.approx((raw, raw, 0.0), rel=1e-4)


def test_value_clipping_bounds_every_element() -> None:
    module, optimizer = _module_with_gradients()
    raw = _grad_norm(module)
    module.trainer = L.Trainer(gradient_clip_val=1e-3, gradient_clip_algorithm="value")
    module.configure_gradient_clipping(optimizer, 1e-3, "value")
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert max(float(g.abs().max()) for g in grads) <= float(torch.tensor(1e-3))  # float32
    assert _reported(module) == pytest.approx((raw, _grad_norm(module), 1.0), rel=1e-4)
