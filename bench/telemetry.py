"""What gradient telemetry costs: training throughput with it on and off, same config and data.

Trains the default config (`configs/m4_hourly.yaml`, bundled M4 Hourly) for one epoch of
`--steps` optimizer steps, alternately with telemetry at its configured cadence and without,
`--repeats` times each (alternating, so a drift in the machine's speed hits both alike), and
prints training windows/s and the overhead. No validation, no MLflow: the Lightning loop alone.

    .venv/bin/python bench/telemetry.py [--steps 256] [--repeats 5] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import lightning as L
import torch
from timing import bare_trainer

from stackcast.models import StackedRNNForecaster
from stackcast.training.config import TrainConfig, load_config
from stackcast.training.datamodule import SeriesDataModule
from stackcast.training.module import ForecastModule
from stackcast.training.train import build_datamodule, build_telemetry, load_training_series

HOOKS = (
    "on_train_batch_start",
    "on_before_optimizer_step",
    "on_train_batch_end",
    "on_train_epoch_end",
)


def timed(callback: Any, spent: list[float]) -> Any:
    """Wrap the callback's hooks so the time spent inside them adds up in `spent`."""
    for name in HOOKS:
        hook = getattr(callback, name)

        def wrapper(*args: Any, _hook: Any = hook, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        setattr(callback, name, wrapper)
    return callback


def fit_seconds(
    config: TrainConfig, dm: SeriesDataModule, steps: int, telemetry: bool
) -> tuple[float, float]:
    """Wall time of `steps` training steps (one epoch), after a 5-step warm-up fit, and the
    part of it spent inside the telemetry callback."""
    callbacks: list[Any] = []
    spent = [0.0]
    if telemetry:
        built = build_telemetry(config)
        assert built is not None
        callbacks.append(timed(built, spent))
    L.seed_everything(config.trainer.seed, verbose=False)
    module = ForecastModule(StackedRNNForecaster(config.model), config.optim)

    bare_trainer(config, 5, callbacks).fit(
        module, datamodule=dm
    )  # warm-up: allocations, first-call costs
    spent[0] = 0.0
    start = time.perf_counter()
    bare_trainer(config, steps, callbacks).fit(module, datamodule=dm)
    return time.perf_counter() - start, spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=256, help="steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    config = load_config(overrides=args.overrides)
    m = config.model
    series = load_training_series(config.data, min_length=m.input_size + m.horizon)
    dm = build_datamodule(config, series)
    windows = args.steps * config.optim.batch_size
    times: dict[bool, list[float]] = {False: [], True: []}
    inside: list[float] = []  # fraction of the telemetry-on epoch spent in its hooks
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.steps} steps of "
        f"{config.optim.batch_size} windows; telemetry every {config.telemetry.every_n_steps} "
        f"steps, probe {config.telemetry.probe_size}",
        flush=True,
    )
    for repeat in range(args.repeats):
        for telemetry in (False, True):
            seconds, hooks = fit_seconds(config, dm, args.steps, telemetry)
            times[telemetry].append(seconds)
            if telemetry:
                inside.append(hooks / seconds)
            print(
                f"  repeat {repeat + 1}, telemetry {'on ' if telemetry else 'off'}: "
                f"{seconds:6.2f} s, {windows / seconds:8.0f} windows/s"
                + (f", {hooks:.2f} s inside telemetry hooks" if telemetry else ""),
                flush=True,
            )
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print("\n| telemetry | median s / epoch | windows/s |\n|---|---:|---:|")
    print(f"| off | {off:.2f} | {windows / off:.0f} |\n| on | {on:.2f} | {windows / on:.0f} |")
    print(
        f"\ntime inside the telemetry callback: median {100 * statistics.median(inside):.2f}% "
        f"of the epoch (range {100 * min(inside):.2f}% to {100 * max(inside):.2f}%)"
    )
    pairs = sorted(100 * (b / a - 1) for a, b in zip(times[False], times[True], strict=True))
    print(
        f"overhead, per alternating pair: median {statistics.median(pairs):+.1f}%, "
        f"range {pairs[0]:+.1f}% to {pairs[-1]:+.1f}% ({args.repeats} pairs)"
    )


if __name__ == "__main__":
    main()
