"""A run's gradient telemetry as MLflow artifacts and tags: the map as JSON and a heatmap."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import mlflow
import numpy as np
from matplotlib.figure import Figure

from stackcast.training.telemetry import GradientMap, Verdict

MAP_JSON = "gradients/map.json"
MAP_PNG = "gradients/map.png"
MAX_PANELS = 4  # maps drawn: spread evenly over the run, first and last included


def _finite(value: float | None) -> float | str | None:
    return value if value is None or math.isfinite(value) else str(value)


def map_document(maps: list[GradientMap], verdict: Verdict) -> dict[str, Any]:
    """The raw matrices (JSON-safe: inf and nan as strings) with the verdict."""
    return {
        "description": "norms[l][t] = mean over the probe of ||dL/dh_t|| of layer l (bottom "
        "first) at recurrent step t; decay ratio = norms[l][0] / norms[l][-1]",
        "verdict": verdict.label,
        "reason": verdict.reason,
        "maps": [
            {
                "step": m.step,
                "norms": [[_finite(v) for v in row] for row in m.norms],
                "bottom_decay_ratio": _finite(m.bottom_decay_ratio),
                "top_decay_ratio": _finite(m.top_decay_ratio),
            }
            for m in maps
        ],
    }


def heatmap(maps: list[GradientMap], title: str) -> Figure:
    """log10 ||dL/dh_t|| as layers x time panels at a few steps of the run."""
    picks = sorted({round(i) for i in np.linspace(0, len(maps) - 1, min(MAX_PANELS, len(maps)))})
    chosen = [maps[i] for i in picks]
    fig, axes = plt.subplots(
        1, len(chosen), figsize=(3.2 * len(chosen) + 1, 2.6), squeeze=False, constrained_layout=True
    )
    values = [np.log10(np.clip(np.asarray(m.norms, dtype=float), 1e-30, None)) for m in chosen]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(1)
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = None
    for ax, m, v in zip(axes[0], chosen, values, strict=True):
        image = ax.imshow(v, aspect="auto", origin="lower", cmap="viridis", vmin=low, vmax=high)
        ax.set_title(f"step {m.step}", fontsize=9)
        ax.set_xlabel("time step t")
        ax.set_ylabel("layer (0 = bottom)")
        ax.set_yticks(range(v.shape[0]))
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="log10 ||dL/dh_t||")
    fig.suptitle(title, fontsize=10)
    return fig


def log_gradient_report(maps: list[GradientMap], verdict: Verdict, figure: bool = True) -> None:
    """Into the active MLflow run: the map JSON, the heatmap and the verdict tags.

    `figure=False` leaves the heatmap out (the lab's many child runs).
    """
    mlflow.set_tags({"gradients.verdict": verdict.label, "gradients.reason": verdict.reason[:5000]})
    mlflow.log_dict(map_document(maps, verdict), MAP_JSON)
    if maps and figure:
        fig = heatmap(maps, f"gradient map: {verdict.label}")
        mlflow.log_figure(fig, MAP_PNG)
        plt.close(fig)
