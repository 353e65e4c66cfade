"""A peer on the same work: Nixtla neuralforecast's `LSTM` against `stackcast train`.

Both train on the 414 M4 Hourly training series with matched settings (input 168, horizon 48,
hidden size, layers, batch of windows, optimizer steps, lr, MAE loss), one run each on the
same machine; both then forecast the 48 test points and are scored the M4 way (sMAPE, MASE,
OWA against Naive2). neuralforecast comes from the `bench` extra only (`pip install -e
.[bench]` in a separate venv): it is never a dependency of stackcast itself.

Our default model reads the week as 7 daily patches (`patch_size: 24`); the peer's LSTM steps
through all 168 hours. Ours is also trained and scored with `patch_size: 1` (the same 168-step
recurrence) so the table separates what the pipeline costs from what the patching saves.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from timing import TrainingTimer, timer_for

from stackcast.training.config import TrainConfig
from stackcast.training.evaluate import OURS, evaluate
from stackcast.training.m4 import HORIZON, SEASONALITY, load_m4_hourly, to_long
from stackcast.training.metrics import score_table
from stackcast.training.train import train

PEER = "neuralforecast LSTM"


@dataclass(frozen=True)
class PeerRow:
    """One contender's speed and test accuracy."""

    name: str
    seconds_per_step: float
    steps: int
    smape: float | None = None
    mase: float | None = None
    owa: float | None = None
    wall: float | None = None  # whole fit, seconds (data prep, loop, validation, logging)


def matched(config: TrainConfig, hidden_size: int, steps: int) -> TrainConfig:
    """Our config cut to the comparison: `hidden_size`, exactly `steps` optimizer steps."""
    per_epoch = min(steps, config.data.samples_per_epoch // config.optim.batch_size)
    if steps % per_epoch:
        raise ValueError(f"steps must be a multiple of {per_epoch} (one epoch)")
    return config.model_copy(
        update={
            "model": config.model.model_copy(update={"hidden_size": hidden_size}),
            "data": config.data.model_copy(
                update={"samples_per_epoch": per_epoch * config.optim.batch_size}
            ),
            "trainer": config.trainer.model_copy(
                update={
                    "max_epochs": steps // per_epoch,
                    "patience": steps,  # every step runs, as in the peer
                    "progress_bar": False,
                }
            ),
        }
    )


def run_stackcast(config: TrainConfig, store: Path) -> PeerRow:
    """`stackcast train` as a user runs it, then `evaluate` on the test part."""
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    config = config.model_copy(
        update={
            "trainer": config.trainer.model_copy(update={"checkpoint_dir": store / "ckpt"}),
        }
    )
    timer = TrainingTimer()
    start = time.perf_counter()
    result = train(config, extra_callbacks=[timer])
    wall = time.perf_counter() - start
    table = evaluate(result.model_uri, log_to_run=False)
    row = table.loc[OURS]
    steps = timer.steps + 3
    return PeerRow(
        f"stackcast (patch {config.model.patch_size})",
        timer.seconds_per_step(),
        steps,
        float(row["sMAPE"]),
        float(row["MASE"]),
        float(row["OWA"]),
        wall,
    )


def run_neuralforecast(config: TrainConfig, steps: int) -> PeerRow:
    """neuralforecast's LSTM with our settings; scored on the same test part."""
    import pytorch_lightning as pl
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MAE
    from neuralforecast.models import LSTM

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    m4 = load_m4_hourly()
    frame = to_long(m4.ids, m4.train)
    m = config.model
    timer = timer_for(pl.Callback)()
    model = LSTM(
        h=m.horizon,
        input_size=m.input_size,
        encoder_hidden_size=m.hidden_size,
        encoder_n_layers=m.num_layers,
        decoder_hidden_size=m.hidden_size,
        # windows per step, as our batch; drawn from its default 32 series per step (drawing
        # from all 414, as our sampler does, makes its window building ~5x slower)
        windows_batch_size=config.optim.batch_size,
        max_steps=steps,
        learning_rate=config.optim.lr,
        loss=MAE(),
        random_seed=config.trainer.seed,
        accelerator="cpu",
        callbacks=[timer],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
    )
    forecaster = NeuralForecast(models=[model], freq=1)
    start = time.perf_counter()
    forecaster.fit(frame)
    wall = time.perf_counter() - start
    # NeuralForecast fits deep copies of its models: read the copy's timer
    fitted = forecaster.models[0].trainer_kwargs["callbacks"]
    timer = next(c for c in fitted if isinstance(c, type(timer)))
    predicted = forecaster.predict()
    predicted["h"] = predicted.groupby("unique_id").cumcount()  # series end at different ds
    wide = predicted.pivot(index="unique_id", columns="h", values="LSTM").loc[m4.ids]
    table = score_table(
        m4.train, np.stack(m4.test), {PEER: wide.to_numpy(np.float64)[:, :HORIZON]}, SEASONALITY
    )
    row = table.loc[PEER]
    return PeerRow(
        PEER,
        timer.seconds_per_step(),
        steps,
        float(row["sMAPE"]),
        float(row["MASE"]),
        float(row["OWA"]),
        wall,
    )


def compare(config: TrainConfig, hidden_size: int, steps: int) -> list[PeerRow]:
    """Peer, ours (default patching), ours with patch 1 (the peer's 168-step recurrence)."""
    base = matched(config, hidden_size, steps)
    unpatched = base.model_copy(update={"model": base.model.model_copy(update={"patch_size": 1})})
    rows = []
    with tempfile.TemporaryDirectory(prefix="stackcast-bench-peer-") as tmp:
        print(f"  {PEER}: {steps} steps", flush=True)
        rows.append(run_neuralforecast(base, steps))
        print(f"    {rows[-1]}", flush=True)
        for variant, name in ((base, "ours"), (unpatched, "patch1")):
            print(f"  stackcast (patch {variant.model.patch_size}): {steps} steps", flush=True)
            rows.append(run_stackcast(variant, Path(tmp) / name))
            print(f"    {rows[-1]}", flush=True)
    return rows


def peer_table(rows: list[PeerRow], hidden_size: int, config: TrainConfig) -> str:
    """Markdown: speed and accuracy of each contender, and the speed-up over the peer."""
    peer = next(r for r in rows if r.name == PEER)
    m = config.model
    lines = [
        f"Matched: M4 Hourly train part (414 series), input {m.input_size}, horizon "
        f"{m.horizon}, {m.cell} {m.num_layers} x {hidden_size}, {config.optim.batch_size} "
        f"windows per step, lr {config.optim.lr}, MAE loss, {peer.steps} steps, seed "
        f"{config.trainer.seed}; test part scored the M4 way.",
        "",
        "| model | s/step | s per 256 steps | speed-up vs peer | whole fit (s) | test sMAPE "
        "| test MASE | OWA |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:

        def num(value: float | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        lines.append(
            f"| {r.name} | {r.seconds_per_step:.3f} | {256 * r.seconds_per_step:.1f} | "
            f"{peer.seconds_per_step / r.seconds_per_step:.1f}x | {num(r.wall, '.0f')} | "
            f"{num(r.smape, '.2f')} | {num(r.mase, '.3f')} | {num(r.owa, '.3f')} |"
        )
    return "\n".join(lines) + "\n"
