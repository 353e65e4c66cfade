"""The gradient map as an interactive HTML page (Plotly), for MLflow's artifact viewer.

The same panels as the PNG (`gradient_figure.py`): a heatmap per layer, top layer first, with
every map of the run as a row, and the decay ratios over the run against the thresholds; here
hovering a cell gives its train step, time step and `||dL/dh_t||`, and any panel zooms. The
page is self-contained (plotly.js embedded, about 4.8 MB): MLflow shows `.html` artifacts in an
iframe, and nothing may be fetched from a CDN.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stackcast.training.telemetry import GradientMap

WIDTH_PX = 540  # as the PNG: fits the preview pane


def gradient_page(
    maps: list[GradientMap],
    title: str,
    vanishing_ratio: float,
    exploding_ratio: float,
) -> str:
    """Every map of the run as one self-contained HTML page."""
    fig = gradient_plot(maps, title, vanishing_ratio, exploding_ratio)
    page: str = fig.to_html(include_plotlyjs=True, full_html=True, div_id="gradient-map")
    return page


def gradient_plot(
    maps: list[GradientMap],
    title: str,
    vanishing_ratio: float,
    exploding_ratio: float,
) -> go.Figure:
    """The Plotly figure of `gradient_page`."""
    if not maps:
        raise ValueError("gradient_plot: no gradient map recorded")
    norms = np.asarray([m.norms for m in maps], dtype=float).transpose(1, 0, 2)  # (L, maps, T)
    layers, _, horizon = norms.shape
    steps = [m.step for m in maps]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.clip(norms, 1e-30, None))
    logs[~np.isfinite(logs)] = np.nan  # a gap, not a colour
    finite = logs[np.isfinite(logs)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    names = [
        f"layer {k}" + (" (bottom)" if k == 0 else " (top)" if k == layers - 1 else "")
        for k in reversed(range(layers))
    ]
    fig = make_subplots(
        rows=layers + 1,
        cols=1,
        subplot_titles=[*names, "decay ratio ||dL/dh_1|| / ||dL/dh_T||"],
        vertical_spacing=0.45 / (layers + 1),
    )
    heat_top, heat_bottom = fig.layout["yaxis"].domain[1], fig.layout[f"yaxis{layers}"].domain[0]
    for row, layer in enumerate(reversed(range(layers)), start=1):
        fig.add_trace(
            go.Heatmap(
                z=logs[layer],
                x=list(range(1, horizon + 1)),
                y=steps,
                customdata=norms[layer],
                zmin=low,
                zmax=high,
                colorscale="Viridis",
                showscale=row == 1,
                colorbar={
                    "title": {"text": "log10 ||dL/dh_t||", "side": "right"},
                    "len": heat_top - heat_bottom,  # beside the heatmaps only
                    "y": heat_bottom,
                    "yanchor": "bottom",
                },
                hovertemplate="train step %{y}<br>t = %{x}<br>||dL/dh_t|| = %{customdata:.3g}"
                "<extra></extra>",
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text="train step", autorange="reversed", row=row, col=1)
    fig.update_xaxes(title_text="time step t of the window", row=layers, col=1)
    ratio_row = layers + 1
    for which in ("bottom", "top"):
        ratios = [getattr(m, f"{which}_decay_ratio") for m in maps]
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[r if np.isfinite(r) and r > 0 else None for r in ratios],
                mode="lines+markers",
                name=which,
                hovertemplate=f"{which}: %{{y:.3g}} at train step %{{x}}<extra></extra>",
            ),
            row=ratio_row,
            col=1,
        )
    for threshold, name in ((vanishing_ratio, "vanishing"), (exploding_ratio, "exploding")):
        fig.add_hline(y=threshold, line_dash="dash", line_color="grey", row=ratio_row, col=1)
        fig.add_annotation(  # on a log axis an annotation's y is log10 of the value
            text=f"{name} {threshold:g}",
            x=1,
            xref=f"x{ratio_row} domain",
            y=float(np.log10(threshold)),
            yref=f"y{ratio_row}",
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            font={"color": "grey", "size": 12},
        )
    shown = [r for m in maps for r in (m.bottom_decay_ratio, m.top_decay_ratio)]
    shown = [r for r in shown if np.isfinite(r) and r > 0] + [vanishing_ratio, exploding_ratio]
    span = [np.log10(min(shown)) - 0.5, np.log10(max(shown)) + 0.5]  # thresholds in view
    fig.update_yaxes(type="log", range=span, row=ratio_row, col=1)
    fig.update_xaxes(title_text="train step", row=ratio_row, col=1)
    fig.update_layout(
        title={"text": title.replace("\n", "<br>")},
        width=WIDTH_PX,
        height=190 * layers + 230 + 110,
        font={"size": 13},
        margin={"l": 70, "r": 20, "t": 90, "b": 50},
        legend={"orientation": "h", "y": -0.08},
    )
    return fig
