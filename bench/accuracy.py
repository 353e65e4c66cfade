"""Accuracy on a bundled M4 subset: train a config for several seeds, score each on the test set.

Each seed runs `stackcast train --config CONFIG --set trainer.seed=S` and then `stackcast
evaluate` in its own working directory (an embedded MLflow store), as a user would, and the
wall time of `train` is measured around the command. Selection happened on the validation span
before: this script only reports, for every seed, the validation score the run was selected
on and the official test sMAPE / MASE / OWA.

    .venv/bin/python bench/accuracy.py --config configs/m4_weekly.yaml --seeds 42 1 2
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class SeedResult:
    """One seed's run: what it was selected on, what it scored on test, how long it took."""

    seed: int
    epochs: int
    best_epoch: int
    val_metric: str
    val_value: float
    smape: float
    mase: float
    owa: float
    train_seconds: float


def _stackcast(args: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-m", "stackcast", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"stackcast {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def run_seed(config: Path, seed: int, extra: list[str]) -> SeedResult:
    """Train and evaluate one seed in a fresh directory."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        sets = ["--set", f"trainer.seed={seed}", "--set", "trainer.progress_bar=false", *extra]
        start = time.perf_counter()
        trained = _stackcast(["train", "--config", str(config.resolve()), *sets], cwd)
        seconds = time.perf_counter() - start
        line = re.search(
            r"^(val/\w+): ([\d.]+) \(epochs trained: (\d+); registered weights from epoch (\d+)",
            trained,
            re.M,
        )
        if line is None:
            raise RuntimeError(f"unexpected train output:\n{trained}")
        name = re.search(r"^registered: (\S+) version", trained, re.M)
        assert name is not None
        scored = _stackcast(["evaluate", "--model", f"models:/{name[1]}@champion"], cwd)
        ours = re.search(r"^stackcast\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+ours", scored, re.M)
        if ours is None:
            raise RuntimeError(f"unexpected evaluate output:\n{scored}")
    return SeedResult(
        seed,
        int(line[3]),
        int(line[4]),
        line[1],
        float(line[2]),
        float(ours[1]),
        float(ours[2]),
        float(ours[3]),
        seconds,
    )


def report(config: Path, results: list[SeedResult]) -> str:
    """A markdown table of every seed, then the mean and spread of the test OWA."""
    rows = [
        "| seed | epochs (best) | train wall time | "
        f"{results[0].val_metric} | test sMAPE | test MASE | test OWA |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.seed} | {r.epochs} ({r.best_epoch}) | {r.train_seconds:.0f} s | "
            f"{r.val_value:.4f} | {r.smape:.3f} | {r.mase:.3f} | {r.owa:.3f} |"
        )
    owas = [r.owa for r in results]
    spread = f", sd {statistics.stdev(owas):.3f}" if len(owas) > 1 else ""
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    return "\n".join(
        [
            f"`{config}` ({machine}):",
            "",
            *rows,
            "",
            f"Mean test OWA over {len(owas)} seed(s): {statistics.mean(owas):.3f}{spread}.",
        ]
    )


def main() -> None:
    """Parse the arguments, run every seed in turn, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    extra = [arg for kv in args.sets for arg in ("--set", kv)]
    results = []
    for seed in args.seeds:
        results.append(run_seed(args.config, seed, extra))
        print(f"seed {seed}: {results[-1]}", flush=True)
    print(report(args.config, results))


if __name__ == "__main__":
    main()
