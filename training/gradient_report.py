"""A run's gradient telemetry as MLflow artifacts and tags: the map as JSON and a figure.

Both cover every map the run recorded, from its first step to its last (`covers` in the JSON
says which), not only those up to the best checkpoint.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import mlflow

from stackcast.training.gradient_figure import gradient_figure
from stackcast.training.gradient_html import gradient_page
from stackcast.training.telemetry import GradientMap, Verdict

MAP_JSON = "gradients/map.json"
MAP_PNG = "gradients/map.png"
MAP_HTML = "gradients/map.html"  # the same, interactive


def _finite(value: float | None) -> float | str | None:
    return value if value is None or math.isfinite(value) else str(value)


def map_document(maps: list[GradientMap], verdict: Verdict) -> dict[str, Any]:
    """The raw matrices (JSON-safe: inf and nan as strings) with the verdict."""
    return {
        "description": "norms[l][t] = mean over the probe of ||dL/dh_t|| of layer l (bottom "
        "first) at recurrent step t; decay ratio = norms[l][0] / norms[l][-1]",
        "verdict": verdict.label,
        "reason": verdict.reason,
        "covers": {
            "first_step": maps[0].step if maps else None,
            "last_step": maps[-1].step if maps else None,
            "maps": len(maps),
        },
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


def log_gradient_report(maps: list[GradientMap], verdict: Verdict, figure: bool = True) -> None:
    """Into the active MLflow run: the map JSON, the figure (PNG and HTML), the verdict tags.

    `figure=False` leaves the figures out (the lab's many child runs).
    """
    mlflow.set_tags({"gradients.verdict": verdict.label, "gradients.reason": verdict.reason[:5000]})
    mlflow.log_dict(map_document(maps, verdict), MAP_JSON)
    if maps and figure:
        first, last = maps[0].step, maps[-1].step
        steps = f"{len(maps)} maps, train steps {first}-{last}" if last > first else "1 map"
        title = f"gradient map: {verdict.label}\n{steps}"
        fig = gradient_figure(maps, title, verdict.vanishing_ratio, verdict.exploding_ratio)
        mlflow.log_figure(fig, MAP_PNG)
        plt.close(fig)
        page = gradient_page(maps, title, verdict.vanishing_ratio, verdict.exploding_ratio)
        mlflow.log_text(page, MAP_HTML)
