"""The lab's table and figures, from its children's outcomes.

`table.md` states the divergence bound and names every run that left it, with where; the
divergence figure counts them per cell and clipping, and plots how far every run went.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from stackcast.training.lab import Outcome
from stackcast.training.lab_divergence import DIVERGENCE_BOUND

FIGURES = (
    "accuracy_by_cell_and_length.png",
    "decay_ratio_by_cell_and_depth.png",
    "divergence_by_clipping.png",
    "epoch_time_by_depth.png",
)
REPORT_FILES = ("table.csv", "table.md", *FIGURES)  # everything `write_report` writes
COLUMNS = (
    "task",
    "study",
    "cell",
    "init",
    "optimizer",
    "lr",
    "clip",
    "depth",
    "length",
    "score",
    "diverged",
    "peak_ratio",
    "left_bound_at",
    "verdict",
    "bottom_decay_ratio",
    "top_decay_ratio",
    "depth_ratio",
    "seconds_per_epoch",
)


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.3g}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"


def _lines(ax: Axes, data: pd.DataFrame, x: str, y: str, log: bool = True) -> None:
    for cell, group in data.groupby("cell"):
        group = group.sort_values(x)
        ax.plot(group[x], group[y], marker="o", label=str(cell))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _accuracy(frame: pd.DataFrame) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    lengths = frame[  # the length sweep, plus the grid runs with the same settings
        (frame.task == "adding")
        & frame.study.isin(["lengths", "grid"])
        & (frame.init == "default")
        & frame["clip"].notna()
        & (frame.depth == 1)
    ]
    _lines(axes[0], lengths, "length", "score")
    axes[0].axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axes[0].set_ylabel("val MSE / 1/6 (1 = predicting the mean)")
    axes[0].set_title("adding problem: error by sequence length T", fontsize=10)
    m4 = frame[frame.task == "m4"]
    _lines(axes[1], m4, "depth", "score", log=False)
    axes[1].set_ylabel("validation OWA (lower is better)")
    axes[1].set_title("M4 Hourly: OWA by depth", fontsize=10)
    return fig


def _decay(frame: pd.DataFrame) -> Figure:
    runs = frame[(frame.study == "grid") & frame["clip"].notna()]
    grid = runs.groupby(["cell", "depth"], as_index=False).agg(
        bottom_decay_ratio=("bottom_decay_ratio", "median"), depth_ratio=("depth_ratio", "median")
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    _lines(axes[0], grid, "depth", "bottom_decay_ratio")
    axes[0].set_ylabel("||dL/dh_1|| / ||dL/dh_T||, bottom layer")
    axes[0].set_title("back through time (median over inits, clipping on)", fontsize=10)
    _lines(axes[1], grid, "depth", "depth_ratio")
    axes[1].set_ylabel("||dL/dh_T|| bottom / top layer")
    axes[1].set_title("down through the stack", fontsize=10)
    return fig


def divergence_figure(frame: pd.DataFrame, bound: float = DIVERGENCE_BOUND) -> Figure:
    """Fraction diverged per cell and clipping (grid, stress); every run's peak, clipped."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), constrained_layout=True)
    runs = frame[frame.study.isin(["grid", "stress"])].assign(
        clipping=lambda f: f["clip"].notna().map({False: "no clipping", True: "norm clipping"})
    )
    for ax, study, title in (
        (axes[0], "grid", "AdamW (the grid)"),
        (axes[1], "stress", "SGD + momentum, stress"),
    ):
        ax.set_title(f"divergence with and without clipping: {title}", fontsize=9)
        ax.set_ylabel("fraction of runs diverged")
        ax.set_ylim(0, 1.1)
        chosen = runs[runs.study == study]
        if chosen.empty:
            continue
        grouped = chosen.groupby(["cell", "clipping"])["diverged"]
        rates = grouped.mean().unstack("clipping")
        counts = grouped.sum().astype(int).astype(str) + "/" + grouped.size().astype(str)
        labels = counts.unstack("clipping").reindex_like(rates).fillna("")
        rates.plot.bar(ax=ax, rot=0)
        for container, clipping in zip(ax.containers, rates.columns, strict=True):
            ax.bar_label(container, labels=list(labels[clipping]), fontsize=7)  # k of n runs
        ax.set_ylim(0, 1.1)
    ax = axes[2]
    for color, (cell, group) in enumerate(runs.groupby("cell")):
        for diverged, points in group.groupby("diverged"):
            ax.scatter(
                points["steps"],
                points["peak_ratio"].clip(upper=bound),  # inf (a NaN loss) sits on the bound too
                color=f"C{color}",
                marker="x" if diverged else "o",
                label=f"{cell}{', diverged (x)' if diverged else ''}",
                alpha=0.8,
            )
    ax.axhline(bound, color="red", linestyle="--", linewidth=1, label=f"bound {bound:g}")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer steps trained (a diverged run: where it left the bound)")
    ax.set_ylabel("peak of loss / first loss, score")
    ax.set_title("how far each run went (clipped at the divergence bound)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _epoch_time(frame: pd.DataFrame) -> Figure:
    grid = frame[frame.study.isin(["grid", "m4"])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for ax, task in zip(axes, ("adding", "m4"), strict=True):
        runs = grid[(grid.task == task) & ~grid.diverged]
        medians = runs.groupby(["cell", "depth"], as_index=False).agg(
            seconds_per_epoch=("seconds_per_epoch", "median")
        )
        _lines(ax, medians, "depth", "seconds_per_epoch", log=False)
        ax.set_ylabel("seconds per epoch")
        ax.set_title(f"{task}: the cost of stacking", fontsize=10)
    return fig


def _header(frame: pd.DataFrame, title: str) -> str:
    diverged = frame[frame.diverged]
    lines = [
        f"# {title}",
        "",
        f"{len(frame)} runs, {len(diverged)} diverged. A run diverges when its training loss, "
        "in multiples of its first step's loss, or its validation score (`score`: 1 = the "
        f"baseline) is non-finite or above the divergence bound {DIVERGENCE_BOUND:g}; training "
        "stops there, and its verdict is `exploding`. `peak_ratio` is the largest of the two "
        "a run reached (inf: non-finite), `left_bound_at` the optimizer step it left the bound.",
        "",
    ]
    lines += [f"- `{row.name}`: {row.divergence}" for row in diverged.itertuples()]
    return "\n".join(lines) + ("\n\n" if len(diverged) else "\n")


def write_report(outcomes: list[Outcome], out_dir: Path, title: str) -> pd.DataFrame:
    """`table.csv`, `table.md` and the figures (`REPORT_FILES`) in `out_dir`; returns the table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([o.row() for o in outcomes])
    frame.to_csv(out_dir / "table.csv", index=False)
    shown = frame[list(COLUMNS)]
    (out_dir / "table.md").write_text(_header(frame, title) + _markdown(shown))
    draws = (_accuracy, _decay, divergence_figure, _epoch_time)
    for draw, name in zip(draws, FIGURES, strict=True):
        fig = draw(frame)
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
    return frame
