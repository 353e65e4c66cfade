"""The lab's table and figures, from its children's outcomes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from stackcast.training.lab import Outcome

FIGURES = (
    "accuracy_by_cell_and_length.png",
    "decay_ratio_by_cell_and_depth.png",
    "divergence_by_clipping.png",
    "epoch_time_by_depth.png",
)
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


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _accuracy(frame: pd.DataFrame, path: Path) -> None:
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
    _save(fig, path)


def _decay(frame: pd.DataFrame, path: Path) -> None:
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
    _save(fig, path)


def _divergence(frame: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for ax, study, title in (
        (axes[0], "grid", "AdamW (the grid)"),
        (axes[1], "stress", "SGD + momentum, stress"),
    ):
        runs = frame[frame.study == study].assign(clipping=lambda f: f["clip"].notna())
        if runs.empty:
            continue
        rates = runs.groupby(["cell", "clipping"])["diverged"].mean().unstack("clipping")
        rates = rates.rename(columns={False: "no clipping", True: "norm clipping"})
        rates.plot.bar(ax=ax, rot=0)
        ax.set_ylabel("fraction of runs diverged")
        ax.set_ylim(0, 1)
        ax.set_title(f"divergence with and without clipping: {title}", fontsize=9)
    _save(fig, path)


def _epoch_time(frame: pd.DataFrame, path: Path) -> None:
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
    _save(fig, path)


def write_report(outcomes: list[Outcome], out_dir: Path, title: str) -> pd.DataFrame:
    """`table.csv`, `table.md` and the figures in `out_dir`; returns the table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([o.row() for o in outcomes])
    frame.to_csv(out_dir / "table.csv", index=False)
    shown = frame[list(COLUMNS)]
    (out_dir / "table.md").write_text(f"# {title}\n\n{len(frame)} runs.\n\n{_markdown(shown)}")
    for draw, name in zip((_accuracy, _decay, _divergence, _epoch_time), FIGURES, strict=True):
        draw(frame, out_dir / name)
    return frame
