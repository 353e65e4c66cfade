"""The gradient map as one PNG that reads in MLflow's artifact preview without zooming.

One panel per row: a heatmap per layer (top layer first) with every recorded map as a row
(optimizer step, down the y axis; the maps are evenly spaced, `every_n_steps` apart) and the
recurrent time step t across, and under them the bottom and top layers' decay ratios over the
run against the verdict's thresholds. The figure
is `WIDTH_IN` x `DPI` = 540 px wide, narrower than the preview pane (about 550 px in a 1440 px
window), so MLflow shows it at its natural size and the 11-13 pt labels stay legible.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from stackcast.training.telemetry import GradientMap

WIDTH_IN = 5.4  # x DPI = 540 px: not shrunk by the preview pane
DPI = 100
LAYER_IN = 1.9  # height of one layer's heatmap
RATIO_IN = 2.3  # height of the decay-ratio panel


def _log_norms(maps: list[GradientMap]) -> np.ma.MaskedArray:
    """log10 ||dL/dh_t|| as (layers, maps, steps); zeros at 1e-30, inf and nan masked."""
    norms = np.asarray([m.norms for m in maps], dtype=float).transpose(1, 0, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.ma.masked_invalid(np.log10(np.clip(norms, 1e-30, None)))


def _ratios(maps: list[GradientMap], which: str) -> np.ma.MaskedArray:
    values = [getattr(m, f"{which}_decay_ratio") for m in maps]
    return np.ma.masked_invalid(np.asarray(values, dtype=float))


def gradient_figure(
    maps: list[GradientMap],
    title: str,
    vanishing_ratio: float,
    exploding_ratio: float,
) -> Figure:
    """Every map of the run, one heatmap per layer, and the decay ratios the verdict reads."""
    if not maps:
        raise ValueError("gradient_figure: no gradient map recorded")
    values = _log_norms(maps)  # (layers, maps, T)
    layers, _, horizon = values.shape
    steps = np.asarray([m.step for m in maps])  # evenly spaced: every `every_n_steps`
    half = (steps[-1] - steps[0]) / max(len(steps) - 1, 1) / 2 or 0.5  # half a row, in steps
    low, high = (float(values.min()), float(values.max())) if values.count() else (0.0, 1.0)
    # Large labels: the preview shows the figure at 100%.
    with plt.rc_context(
        {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "figure.titlesize": 13}
    ):
        fig: Figure
        fig, axes = plt.subplots(
            layers + 1,
            1,
            figsize=(WIDTH_IN, LAYER_IN * layers + RATIO_IN + 0.9),
            dpi=DPI,
            height_ratios=[LAYER_IN] * layers + [RATIO_IN],
            layout="constrained",
        )
        image = None
        for row, layer in enumerate(reversed(range(layers))):  # top layer first, as stacked
            ax = axes[row]
            image = ax.imshow(
                values[layer],
                aspect="auto",
                interpolation="nearest",
                extent=(0.5, horizon + 0.5, steps[-1] + half, steps[0] - half),  # run downwards
                cmap="viridis",
                vmin=low,
                vmax=high,
            )
            name = "bottom" if layer == 0 else "top" if layer == layers - 1 else ""
            ax.set_title(f"layer {layer}" + (f" ({name})" if name else ""), loc="left")
            ax.set_ylabel("train step")
            if len(steps) == 1:
                ax.set_yticks(steps)
            if row == layers - 1:
                ax.set_xlabel("time step t of the window")
            else:
                ax.tick_params(labelbottom=False)
        assert image is not None
        fig.colorbar(image, ax=axes[:layers].tolist(), label="log10 ||dL/dh_t||", shrink=0.9)
        ratio_ax = axes[layers]
        for which, marker in (("bottom", "o"), ("top", "s")):
            ratio_ax.plot(steps, _ratios(maps, which), marker=marker, markersize=3, label=which)
        for threshold, name in ((vanishing_ratio, "vanishing"), (exploding_ratio, "exploding")):
            ratio_ax.axhline(threshold, color="grey", linestyle="--", linewidth=1)
            ratio_ax.annotate(
                f"{name} {threshold:g}",
                (1, threshold),
                xycoords=("axes fraction", "data"),
                xytext=(-2, 2),
                textcoords="offset points",
                horizontalalignment="right",
                color="grey",
                fontsize=10,
            )
        ratio_ax.set_yscale("log")
        if len(steps) == 1:
            ratio_ax.set_xticks(steps)
        ratio_ax.set_title("decay ratio ||dL/dh_1|| / ||dL/dh_T||", loc="left")
        ratio_ax.set_xlabel("train step")
        ratio_ax.legend(loc="best", fontsize=10)
        fig.suptitle(title)
    return fig
