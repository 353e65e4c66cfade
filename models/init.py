"""Named weight initializations (remedies for vanishing gradients) and the init report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from stackcast.models.config import GATES, ModelConfig

WeightInit = Callable[[torch.Tensor], Any]

# Input-to-hidden (and head) rule of each scheme; gate blocks are initialized one by one so
# each gate's (H, in) matrix gets its own fan-in/fan-out, not the stacked (G*H, in) one.
_INPUT_RULES: dict[str, WeightInit] = {
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "he_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "he_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    "orthogonal": nn.init.xavier_uniform_,  # Saxe et al.: orthogonal recurrence, Xavier inputs
    "identity": lambda w: nn.init.normal_(w, std=1e-3),  # Le et al. 2015 (IRNN)
}
_RECURRENT_RULES: dict[str, WeightInit] = {
    **_INPUT_RULES,
    "orthogonal": nn.init.orthogonal_,
    "identity": lambda w: nn.init.eye_(w),
}


def _per_gate(weight: torch.Tensor, gates: int, rule: WeightInit) -> None:
    for block in weight.chunk(gates, dim=0):  # views: (H, in) each
        rule(block)


@torch.no_grad()
def initialize(model: nn.Module, config: ModelConfig) -> None:
    """Apply the config's named init scheme to every recurrent layer and the head.

    `default` keeps PyTorch's U(-1/sqrt(H), 1/sqrt(H)). Other schemes zero the biases. An LSTM
    `forget_bias` is applied last, to `bias_ih` (with `bias_hh`'s forget block zeroed).
    """
    gates = len(GATES[config.cell])
    layers: list[nn.RNNBase] = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    if config.init != "default":
        for layer in layers:
            _per_gate(layer.get_parameter("weight_ih_l0"), gates, _INPUT_RULES[config.init])
            _per_gate(layer.get_parameter("weight_hh_l0"), gates, _RECURRENT_RULES[config.init])
            nn.init.zeros_(layer.get_parameter("bias_ih_l0"))
            nn.init.zeros_(layer.get_parameter("bias_hh_l0"))
        for linear in (m for m in model.modules() if isinstance(m, nn.Linear)):
            _INPUT_RULES[config.init](linear.weight)
            nn.init.zeros_(linear.bias)
    if config.forget_bias is not None:
        h = config.hidden_size
        for layer in layers:
            layer.get_parameter("bias_ih_l0")[h : 2 * h].fill_(config.forget_bias)  # rows H..2H
            layer.get_parameter("bias_hh_l0")[h : 2 * h].zero_()


def _spectrum(matrix: torch.Tensor) -> tuple[float, float]:
    """Spectral radius (max |eigenvalue|) and largest singular value of a square matrix."""
    m = matrix.detach().double().cpu()
    radius = torch.linalg.eigvals(m).abs().max().item()
    sigma = torch.linalg.matrix_norm(m, ord=2).item()
    return float(radius), float(sigma)


@torch.no_grad()
def init_report(model: nn.Module) -> dict[str, Any]:
    """Per-layer weight statistics: what "tracked initialization" logs.

    Recurrent matrices with spectral radius / largest singular value below 1 tend to make
    gradients vanish through time, above 1 to make them explode. For gated cells the statistics
    are given per gate block (each (H, H)) and their maximum.

    Returns:
        `{"layers": [{"layer", "weight_ih_norm", "weight_hh_norm", "spectral_radius",
        "max_singular_value", "gates": {gate: {"spectral_radius", "max_singular_value"}}}],
        "head_weight_norm": float}`.
    """
    config: ModelConfig = model.config  # type: ignore[assignment]
    names = GATES[config.cell]
    layers = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    report: list[dict[str, Any]] = []
    for k, layer in enumerate(layers):
        gates: dict[str, dict[str, float]] = {}
        w_hh = layer.get_parameter("weight_hh_l0")  # (G * H, H)
        for name, block in zip(names, w_hh.chunk(len(names), dim=0), strict=True):
            radius, sigma = _spectrum(block)
            gates[name] = {"spectral_radius": radius, "max_singular_value": sigma}
        report.append(
            {
                "layer": k,
                "weight_ih_norm": float(layer.get_parameter("weight_ih_l0").norm()),
                "weight_hh_norm": float(w_hh.norm()),
                "spectral_radius": max(g["spectral_radius"] for g in gates.values()),
                "max_singular_value": max(g["max_singular_value"] for g in gates.values()),
                "gates": gates,
            }
        )
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return {"layers": report, "head_weight_norm": float(head.weight.norm())}


def flatten_init_report(report: dict[str, Any], prefix: str = "init") -> dict[str, float]:
    """Flatten `init_report` into metric names such as `init/l0/weight_hh_spectral_radius`."""
    flat = {f"{prefix}/head_weight_norm": report["head_weight_norm"]}
    for layer in report["layers"]:
        base = f"{prefix}/l{layer['layer']}"
        flat[f"{base}/weight_ih_norm"] = layer["weight_ih_norm"]
        flat[f"{base}/weight_hh_norm"] = layer["weight_hh_norm"]
        flat[f"{base}/weight_hh_spectral_radius"] = layer["spectral_radius"]
        flat[f"{base}/weight_hh_max_singular_value"] = layer["max_singular_value"]
    return flat
