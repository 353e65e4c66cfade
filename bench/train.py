"""Training performance: `stackcast train` against a bare PyTorch loop, the cost of depth, a peer.

1. Pipeline efficiency: training windows/s of the real `stackcast train` (data module, Lightning
   loop, MLflow logging, gradient telemetry at its default cadence; validation time left out)
   against a bare loop training the same `nn.Module` on the same pre-built tensors, batch size,
   loss, clipping and optimizer. Alternating repeats; the ratio of each pair is reported.
2. The cost of depth: seconds per epoch (256 steps of 256 windows) for num_layers 1, 2, 4, 8 of
   each cell, through the Lightning module.
3. A peer (full mode, when the `bench` extra is installed: neuralforecast): its `LSTM` on M4
   Hourly with matched settings, step time and test sMAPE / MASE / OWA, against ours
   (`bench/peer.py`). `make bench-train` builds that environment (.venv-bench) and runs this.
4. GPU, where there is one (`bench/gpu.py`).

    .venv-bench/bin/python bench/train.py [--quick] [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from timing import WARMUP, TrainingTimer, module_seconds_per_step

from stackcast.models import StackedRNNForecaster
from stackcast.training.config import TrainConfig, load_config
from stackcast.training.datamodule import SeriesDataModule
from stackcast.training.train import build_datamodule, load_training_series, train

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
DEPTHS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Mode:
    """How much to measure."""

    steps: int  # optimizer steps per timed epoch (efficiency)
    repeats: int
    depth_steps: int  # steps timed per (cell, depth)
    peer_steps: int  # steps each contender trains in the peer comparison (0: skipped)


QUICK = Mode(steps=48, repeats=6, depth_steps=8, peer_steps=0)
# Back-to-back bare epochs on the 2-vCPU VM differ by 15-35%: many short triplets, median ratio.
FULL = Mode(steps=96, repeats=12, depth_steps=64, peer_steps=256)
PEER_HIDDEN = 128  # the peer steps through 168 hours: at 256 it would not fit the time budget


def pipeline_seconds(config: TrainConfig, steps: int, store: Path) -> float:
    """Seconds for `steps` steps through `train()` itself (MLflow, telemetry, checkpoints)."""
    import os

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    timer = TrainingTimer()
    run = config.model_copy(
        update={
            "trainer": config.trainer.model_copy(
                update={
                    "max_epochs": 1,
                    "limit_train_batches": steps + WARMUP,
                    "progress_bar": False,
                    "checkpoint_dir": store / "checkpoints",
                }
            )
        }
    )
    train(run, extra_callbacks=[timer])
    return timer.seconds_per_step() * steps


def bare_seconds(config: TrainConfig, dm: SeriesDataModule, steps: int) -> float:
    """The same work in a plain loop: random batches of the pre-built window tensors."""
    torch.manual_seed(config.trainer.seed)
    model = StackedRNNForecaster(config.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr)
    x, y = dm.train_x, dm.train_y
    clip = config.trainer.gradient_clip_val
    batch = config.optim.batch_size

    def step() -> None:
        rows = torch.randint(0, len(x), (batch,))
        xb, yb = x[rows], y[rows]
        loc, scale = model.window_stats(xb)
        loss = torch.nn.functional.l1_loss(
            model.forward_normalized((xb - loc) / scale), (yb - loc) / scale
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()

    for _ in range(WARMUP):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def efficiency(config: TrainConfig, dm: SeriesDataModule, mode: Mode) -> dict[str, Any]:
    """Alternating bare / Lightning-only / pipeline epochs; windows/s and per-repeat ratios.

    The VM's speed drifts by 15-35% over tens of seconds whatever runs, so the loops alternate
    in short epochs and each ratio compares neighbours; the median ratio is the figure.
    """
    windows = mode.steps * config.optim.batch_size
    loops: dict[str, list[float]] = {"bare": [], "lightning": [], "pipeline": []}
    with tempfile.TemporaryDirectory(prefix="stackcast-bench-train-") as tmp:
        for repeat in range(mode.repeats):
            loops["bare"].append(bare_seconds(config, dm, mode.steps))
            torch.manual_seed(config.trainer.seed)
            loops["lightning"].append(module_seconds_per_step(config, dm, mode.steps) * mode.steps)
            loops["pipeline"].append(pipeline_seconds(config, mode.steps, Path(tmp) / str(repeat)))
            print(
                f"  repeat {repeat + 1}: "
                + ", ".join(f"{k} {windows / v[-1]:5.0f}" for k, v in loops.items())
                + f" windows/s; pipeline / bare {loops['bare'][-1] / loops['pipeline'][-1]:.3f}",
                flush=True,
            )

    def ratios(loop: str) -> list[float]:
        return [b / p for b, p in zip(loops["bare"], loops[loop], strict=True)]

    return {
        "windows": windows,
        "windows_per_s": {k: windows / statistics.median(v) for k, v in loops.items()},
        "ratios": {k: ratios(k) for k in ("lightning", "pipeline")},
    }


def depth_cost(
    config: TrainConfig, dm: SeriesDataModule, mode: Mode
) -> dict[tuple[str, int], float]:
    """Seconds per epoch (256 steps) of the Lightning module for each cell and depth."""
    steps_per_epoch = 65_536 // config.optim.batch_size
    out: dict[tuple[str, int], float] = {}
    for cell, depth in itertools.product(CELLS, DEPTHS):
        model = config.model.model_copy(
            update={
                "cell": cell,
                "num_layers": depth,
                "forget_bias": config.model.forget_bias if cell == "lstm" else None,
            }
        )
        out[cell, depth] = module_seconds_per_step(config, dm, mode.depth_steps, model) * (
            steps_per_epoch
        )
        print(f"  {cell:8s} depth {depth}: {out[cell, depth]:7.1f} s/epoch", flush=True)
    return out


def report(
    config: TrainConfig, mode: Mode, eff: dict[str, Any], depth: dict[tuple[str, int], float]
) -> str:
    m = config.model
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}, Python {platform.python_version()}; "
        f"{'GPU ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}.",
        f"Config: configs/m4_hourly.yaml ({m.cell}, {m.num_layers} x {m.hidden_size}, input "
        f"{m.input_size} as {m.input_size // m.patch_size} patches, horizon {m.horizon}, batch "
        f"{config.optim.batch_size}); {mode.steps} steps per timed epoch, {mode.repeats} "
        "alternating repeats.",
        "",
        "| loop | training windows/s (median) | / bare: median | / bare: quartiles |",
        "|---|---:|---:|---|",
        f"| bare PyTorch (same module, tensors, batch, loss, clipping, AdamW) | "
        f"{eff['windows_per_s']['bare']:.0f} | 1 | |",
    ]
    names = {
        "lightning": "Lightning alone (`ForecastModule`, no logger, callbacks or checkpoints)",
        "pipeline": "`stackcast train` (Lightning, MLflow, telemetry, checkpoints; validation "
        "excluded)",
    }
    for loop, name in names.items():
        r = eff["ratios"][loop]
        q1, _, q3 = statistics.quantiles(r, n=4) if len(r) > 1 else (r[0], r[0], r[0])
        lines.append(
            f"| {name} | {eff['windows_per_s'][loop]:.0f} | **{statistics.median(r):.3f}** | "
            f"{q1:.3f}-{q3:.3f} |"
        )
    lines += [
        "",
        f"Efficiency target: `stackcast train` >= 0.90 of the bare loop; ratios are per "
        f"neighbouring pair ({mode.repeats} repeats).",
        "",
        "Seconds per epoch (256 steps of 256 windows) by cell and depth:",
        "",
        "| cell | "
        + " | ".join(f"{d} layer{'s' if d > 1 else ''}" for d in DEPTHS)
        + " | 8 / 1 | s per added layer (linear fit) | worst fit error |",
        "|---|" + "---:|" * (len(DEPTHS) + 3),
    ]
    for cell in CELLS:
        row = [depth[cell, d] for d in DEPTHS]
        slope, error = linear_growth(row)
        lines.append(
            f"| {cell} | "
            + " | ".join(f"{v:.1f}" for v in row)
            + f" | {row[-1] / row[0]:.1f}x | {slope:.2f} | {error:.0%} |"
        )
    return "\n".join(lines) + "\n"


def linear_growth(seconds: list[float]) -> tuple[float, float]:
    """Least-squares seconds per added layer over DEPTHS, and the fit's worst relative error."""
    slope, intercept = statistics.linear_regression(DEPTHS, seconds)
    error = max(abs(slope * d + intercept - s) / s for d, s in zip(DEPTHS, seconds, strict=True))
    return slope, error


def peer_section(config: TrainConfig, mode: Mode) -> str:
    """The peer comparison, or why it was skipped."""
    try:
        import neuralforecast  # noqa: F401
    except ImportError:
        return "Peer: skipped (neuralforecast missing; install the `bench` extra).\n"
    from peer import compare, peer_table

    print("3. peer: neuralforecast", flush=True)
    rows = compare(config, PEER_HIDDEN, mode.peer_steps)
    return "Peer comparison:\n\n" + peer_table(rows, PEER_HIDDEN, config)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller measurement (< 3 min)")
    parser.add_argument("--append", type=Path, help="append the report to this markdown file")
    args = parser.parse_args()
    mode = QUICK if args.quick else FULL
    config = load_config()
    series = load_training_series(config.data, config.model.input_size + config.model.horizon)
    dm = build_datamodule(config, series)
    print("1. pipeline efficiency", flush=True)
    eff = efficiency(config, dm, mode)
    print("2. cost of depth", flush=True)
    depth = depth_cost(config, dm, mode)
    text = report(config, mode, eff, depth)
    if mode.peer_steps:
        text += "\n" + peer_section(config, mode)
    if torch.cuda.is_available():
        from gpu import gpu_section

        print("4. GPU", flush=True)
        text += "\n" + gpu_section(config, dm, mode.depth_steps)
    else:
        text += "\nGPU: none on this machine; the GPU table is written where one is.\n"
    print("\n" + text)
    if args.append:
        command = "python bench/train.py" + (" --quick" if args.quick else "")
        with args.append.open("a") as out:
            out.write(f"\n### `{command}` ({time.strftime('%Y-%m-%d')})\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
