"""Stacked recurrent forecaster: raw window in, raw-scale multi-horizon forecast out."""

from __future__ import annotations

import torch
from torch import nn

from stackcast.models.config import ModelConfig, Scaling
from stackcast.models.init import initialize

_EPS = 1e-6  # the smallest window scale: an all-zero or constant window stays finite


def _make_layer(config: ModelConfig, input_dim: int) -> nn.RNNBase:
    """One recurrent layer in PyTorch's fused kernel (cuDNN on GPU): no Python loop over time."""
    common = {"input_size": input_dim, "hidden_size": config.hidden_size, "batch_first": True}
    if config.cell == "lstm":
        return nn.LSTM(**common)
    if config.cell == "gru":
        return nn.GRU(**common)
    return nn.RNN(**common, nonlinearity="tanh" if config.cell == "rnn_tanh" else "relu")


def _step_through(
    layer: nn.Module, x: torch.Tensor, states: list[list[torch.Tensor]]
) -> torch.Tensor:
    """`layer` over `x` (B, S, D) one step at a time; appends its S hidden states (B, H).

    Each step's output h_t is also the hidden state the next step starts from, so the
    gradient reaching h_t is the total dL/dh_t: from the layer above and from step t+1.
    """
    steps: list[torch.Tensor] = []
    hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None
    for t in range(x.shape[1]):
        out, state = layer(x[:, t : t + 1], hidden)  # out (B, 1, H)
        h = out[:, 0]  # (B, H)
        steps.append(h)
        hidden = (h.unsqueeze(0), state[1]) if isinstance(state, tuple) else h.unsqueeze(0)
    states.append(steps)
    return torch.stack(steps, dim=1)  # (B, S, H)


def window_stats(x: torch.Tensor, scaling: Scaling) -> tuple[torch.Tensor, torch.Tensor]:
    """Location and scale of each window (B, T) from its finite points only: (B, 1) each.

    - `mean_abs`: location 0, scale mean |y|.
    - `mean_abs_centred`: scale mean |y|, location mean(y) - mean |y|, so each normalized
      window has mean 1. A window of positive values gets location 0 (exactly `mean_abs`); a
      negative, zero-crossing or constant window lands at the same level as a positive one
      instead of far outside what the network saw.
    - `standard`: location mean(y), scale the (unbiased) standard deviation.
    - `none`: location 0, scale 1.

    Scales are clamped below at 1e-6 (an all-zero or constant window), which keeps every mode
    but `none` exactly equivariant to multiplying the window by a positive constant above it.
    """
    if scaling == "none":
        return torch.zeros_like(x[:, :1]), torch.ones_like(x[:, :1])
    observed = torch.isfinite(x)
    count = observed.sum(dim=1, keepdim=True).clamp_min(1)
    x0 = torch.where(observed, x, 0.0)
    mean = x0.sum(dim=1, keepdim=True) / count
    if scaling == "standard":
        sq = torch.where(observed, (x - mean) ** 2, 0.0).sum(dim=1, keepdim=True)
        return mean, (sq / (count - 1).clamp_min(1)).sqrt().clamp_min(_EPS)
    mean_abs = (x0.abs().sum(dim=1, keepdim=True) / count).clamp_min(_EPS)
    if scaling == "mean_abs":
        return torch.zeros_like(mean), mean_abs
    return mean - mean_abs, mean_abs


class StackedRNNForecaster(nn.Module):
    """A stack of recurrent layers whose top final state feeds a direct multi-horizon head.

    Layer k's output sequence is layer k+1's input sequence. Each layer is its own fused
    `nn.LSTM`/`nn.GRU`/`nn.RNN`, so every layer's output sequence can be inspected (gradient
    telemetry) and residual connections can join them.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        features = config.patch_size * (2 if config.padding == "mask" else 1)  # values (+ mask)
        dims = [features] + [config.hidden_size] * (config.num_layers - 1)
        self.layers = nn.ModuleList(_make_layer(config, d) for d in dims)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.horizon)
        initialize(self, config)

    def window_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Location and scale of each raw window, each (B, 1): the space the model works in.

        NaN points (padding with `padding="mask"`) are left out of the statistics.
        """
        return window_stats(x, self.config.scaling)

    def encode(
        self, z: torch.Tensor, states: list[list[torch.Tensor]] | None = None
    ) -> list[torch.Tensor]:
        """Run the stack on a normalized window.

        Args:
            z: normalized window, (B, T); NaN marks padding (`padding="mask"`).
            states: if given, every layer runs one time step at a time (same result, slower)
                and its hidden state at each step, (B, H), is appended here as one list per
                layer: the graph nodes through which dL/dh_t flows, both up the stack and back
                through time (gradient telemetry).

        Returns:
            The output sequence of every layer, bottom first, each (B, S, H) with
            S = T / patch_size recurrent steps.
        """
        h = z.reshape(z.shape[0], -1, self.config.patch_size)  # (B, S, patch_size)
        if self.config.padding == "mask":
            observed = torch.isfinite(h)
            h = torch.cat([torch.where(observed, h, 0.0), observed.to(h.dtype)], dim=2)
        outputs: list[torch.Tensor] = []
        for k, layer in enumerate(self.layers):
            if states is None:
                out, _ = layer(h)  # (B, S, H), fused over time
            else:
                out = _step_through(layer, h, states)
            if self.config.residual and k > 0:
                out = out + h  # same width from layer 2 on
            outputs.append(out)
            h = self.dropout(out) if k < len(self.layers) - 1 else out
        return outputs

    def forward_normalized(
        self, z: torch.Tensor, states: list[list[torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """Forecast in the normalized space: (B, T) -> (B, horizon); `states` as in `encode`."""
        top = self.encode(z, states)[-1]  # (B, S, H)
        out: torch.Tensor = self.head(top[:, -1])  # last time step -> (B, horizon)
        m = self.config.season_length
        if m is not None:
            repeats = -(-self.config.horizon // m)  # ceil
            out = out + z[:, -m:].repeat(1, repeats)[:, : self.config.horizon]  # seasonal naive
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast from raw values.

        Args:
            x: raw input windows, (B, input_size); with `padding="mask"`, NaN marks padding
                (see `stackcast.models.window`).

        Returns:
            Raw-scale forecasts, (B, horizon).
        """
        if x.dim() != 2 or x.shape[1] != self.config.input_size:
            raise ValueError(
                f"expected input (batch, {self.config.input_size}), got {tuple(x.shape)}"
            )
        loc, scale = self.window_stats(x)
        return self.forward_normalized((x - loc) / scale) * scale + loc
