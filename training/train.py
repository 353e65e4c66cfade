"""The `train` verb: data -> Lightning fit -> MLflow run -> registered model version.

A run can be resumed (`training/resume.py`) and trained on several devices with DDP: Lightning's
launcher re-runs the command once per extra device; those processes (ranks > 0) find the run
rank 0 opened in `REPLICA_ENV`, train their shard in lockstep and log nothing themselves.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from stackcast.models import (
    DataContract,
    StackedRNNForecaster,
    flatten_init_report,
    init_report,
)
from stackcast.training.checkpointing import RandomState, ResumableEarlyStopping, last_checkpoint
from stackcast.training.config import Choice, DataConfig, TrainConfig
from stackcast.training.data import SeriesSet, data_fingerprint, load_series_set
from stackcast.training.datamodule import SeriesDataModule, min_series_length
from stackcast.training.gradient_report import log_gradient_report
from stackcast.training.interrupt import SynchronizedStop, sigterm_noted
from stackcast.training.m4 import M4_DATASETS, M4_SOURCES, load_m4
from stackcast.training.module import ForecastModule
from stackcast.training.registry import (
    Registration,
    comparability_tags,
    log_forecaster,
    register_model,
)
from stackcast.training.resume import (
    CHECKPOINT_DIR_TAG,
    CONFIG_ARTIFACT,
    ResumeError,
    ResumePoint,
    checkpoint_dir,
    checkpoint_epochs,
    exclusive_run,
)
from stackcast.training.telemetry import GradientTelemetry, NonFiniteLossError
from stackcast.training.threads import ThreadPlan, plan_threads
from stackcast.training.tracking import configure_tracking, experiment_id

REPLICA_ENV = "STACKCAST_DDP_RUN"  # rank 0 -> the processes Lightning's DDP launcher starts


@dataclass(frozen=True)
class TrainResult:
    """What one `train` call produced."""

    run_id: str
    model_uri: str
    registration: Registration
    metrics: dict[str, float]  # validation metrics of the best checkpoint
    epochs: int  # epochs trained
    best_epoch: int  # 1-based epoch of the best checkpoint: the registered weights
    threads: ThreadPlan  # torch threads of the training process
    baselines: dict[str, tuple[float, float]]  # (sMAPE, MASE) on the same validation windows
    val_windows: int  # validation windows in all (series x rolling origins)


class TrainingInterruptedError(Exception):
    """SIGTERM stopped training; the run is KILLED and can be resumed from its last checkpoint."""

    def __init__(self, run_id: str, checkpoint: Path | None) -> None:
        self.run_id, self.checkpoint = run_id, checkpoint
        kept = f"last checkpoint: {checkpoint}" if checkpoint else "no epoch had finished"
        super().__init__(
            f"training of run {run_id} was interrupted (SIGTERM; {kept}); continue it with "
            f"`stackcast train --resume {run_id}`"
        )


def load_training_series(data: DataConfig, min_length: int) -> dict[str, np.ndarray]:
    """The series to train on: a bundled M4 subset's train part, or a long-format file."""
    return load_with_frequency(data, min_length).series


def load_with_frequency(data: DataConfig, min_length: int = 1) -> SeriesSet:
    """The series with their frequency (inferred or checked; gaps filled as `data.fill` says)."""
    if data.source in M4_SOURCES:
        subset = M4_SOURCES[data.source]
        split = load_m4(subset)
        series = dict(zip(split.ids, split.train, strict=True))
        last: dict[str, pd.Timestamp | int] = {u: len(v) for u, v in series.items()}  # positions
        return SeriesSet(series, M4_DATASETS[subset].frequency, last, 0)
    assert data.path is not None  # guaranteed by DataConfig's validator
    return load_series_set(data.path, min_length=min_length, fill=data.fill, freq=data.freq)


def run_name(config: TrainConfig) -> str:
    """`lstm-2x256-m4_hourly-h48-3fa2`: what was trained on what, plus 4 random hex digits.

    The suffix comes from the OS, not from the seeded generators: two runs of one seeded
    config get different names.
    """
    m, d = config.model, config.data
    data = d.path.stem.split(".")[0] if d.path is not None else d.source
    return f"{m.cell}-{m.num_layers}x{m.hidden_size}-{data}-h{m.horizon}-{os.urandom(2).hex()}"


def drop_short_series(config: TrainConfig, series: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """With `data.drop_short`, leave out the series too short to validate, with a warning.

    Without it, they stay, and the datamodule's error lists them.
    """
    d = config.data
    if not d.drop_short:
        return series
    need = min_series_length(config.model, d.val_windows, d.val_step)
    kept = {k: v for k, v in series.items() if len(v) >= need}
    if len(kept) < len(series):
        warnings.warn(
            f"data.drop_short: dropped {len(series) - len(kept)} of {len(series)} series "
            f"shorter than {need} points",
            stacklevel=2,
        )
    return kept


def build_datamodule(config: TrainConfig, series: dict[str, np.ndarray]) -> SeriesDataModule:
    """Training and validation windows of `series` as `config` cuts them."""
    return SeriesDataModule(
        series,
        model=config.model,
        batch_size=config.optim.batch_size,
        stride=config.data.stride,
        samples_per_epoch=config.data.samples_per_epoch,
        seasonality=config.data.seasonality,
        seed=config.trainer.seed,
        val_windows=config.data.val_windows,
        val_step=config.data.val_step,
        history_limit=config.data.history_limit,
    )


def _check_accelerator(config: TrainConfig) -> None:
    if config.trainer.precision == "bf16-mixed" and not torch.cuda.is_available():
        raise ValueError("trainer.precision='bf16-mixed' needs a GPU; use '32-true' on CPU")
    if config.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        raise ValueError("trainer.accelerator='gpu' but no CUDA device is visible")
    gpus = torch.cuda.device_count() if config.trainer.accelerator != "cpu" else 0
    if gpus and config.trainer.devices > gpus:
        raise ValueError(
            f"trainer.devices={config.trainer.devices} but {gpus} GPU(s) are visible; "
            f"use trainer.accelerator='cpu' for CPU processes"
        )


def build_telemetry(config: TrainConfig) -> GradientTelemetry | None:
    """The gradient telemetry callback the config asks for (None when it is off)."""
    t = config.telemetry
    if not t.enabled:
        return None
    return GradientTelemetry(t.every_n_steps, t.probe_size, t.vanishing_ratio, t.exploding_ratio)


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger, minus ending the run.

    `train` ends it: FINISHED only once the model is registered, KILLED on SIGTERM; so a run
    cut off after `fit` is still resumable.
    """

    def finalize(self, status: str = "success") -> None:
        """Leave the run's status alone (no checkpoints are uploaded: `log_model` is off)."""


def build_trainer(
    config: TrainConfig,
    run_id: str,
    telemetry: GradientTelemetry | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> L.Trainer:
    """Lightning Trainer: clipping, early stopping, best and last checkpoints, into `run_id`.

    Under DDP, one process per device.
    """
    t = config.trainer
    return L.Trainer(
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=t.precision,
        gradient_clip_val=t.gradient_clip_val,
        gradient_clip_algorithm=t.gradient_clip_algorithm,
        callbacks=[
            ModelCheckpoint(  # first: the Trainer's `checkpoint_callback`, the best weights
                dirpath=checkpoint_dir(config, run_id),
                monitor="val/loss",
                mode="min",
                filename="best-{epoch}",
            ),
            last_checkpoint(checkpoint_dir(config, run_id)),
            ResumableEarlyStopping(monitor="val/loss", mode="min", patience=t.patience),
            RandomState(),
            *([telemetry] if telemetry is not None else []),
            *extra_callbacks,
        ],
        logger=RunLogger(tracking_uri=mlflow.get_tracking_uri(), run_id=run_id),
        limit_train_batches=t.limit_train_batches,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=1,
        use_distributed_sampler=False,  # the datamodule shards training itself, not validation
    )


@dataclass(frozen=True)
class _Prepared:
    series: dict[str, np.ndarray]
    datamodule: SeriesDataModule
    module: ForecastModule
    threads: ThreadPlan
    data_contract: DataContract  # logged beside the weights


def _prepare(config: TrainConfig) -> _Prepared:
    """Set torch's threads, seed, load the series, build the windows and a fresh model."""
    _check_accelerator(config)
    t = config.trainer
    threads = plan_threads(t.threads, own_processes=t.devices if t.strategy == "ddp" else 1)
    torch.set_num_threads(threads.threads)  # intra-op; inter-op can be set once per process
    configure_tracking()
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    loaded = load_with_frequency(config.data)
    series = drop_short_series(config, loaded.series)
    dm = build_datamodule(config, series)
    module = ForecastModule(
        StackedRNNForecaster(config.model),
        config.optim,
        val_naive2=dm.naive2_scores(),
        seasonality=config.data.seasonality,
    )
    contract = DataContract(
        source=config.data.source,
        frequency=loaded.frequency.name,
        freq_alias=loaded.frequency.alias,
        seasonality=config.data.seasonality,
    )
    return _Prepared(series, dm, module, threads, contract)


def train(
    config: TrainConfig,
    extra_callbacks: Sequence[Callback] = (),
    resume: ResumePoint | None = None,
    choices: Sequence[Choice] = (),
    promote: bool = False,
) -> TrainResult | None:
    """Train, track and register one model as `config` describes.

    `extra_callbacks` join the Trainer's own (e.g. a benchmark's timer). With `resume`, the
    interrupted run continues from its last checkpoint (`config` must be `resume.config`).
    `choices` (the `auto` keys resolved for `config`) are logged as params and description.
    `promote` moves the registry alias to the new version in any case (even if it is not
    better, or the holder was validated on other data, horizon or windows). Returns None in a
    DDP replica (rank > 0): rank 0 logs and registers.

    Raises:
        TrainingInterruptedError: SIGTERM; the run is KILLED and resumable.
        NonFiniteLossError: the loss went NaN/inf; the run is FAILED.
        ResumeError: `resume` does not fit the data, or another process holds the run.
    """
    if is_ddp_replica():
        _train_replica(extra_callbacks)
        return None
    if resume is not None and config != resume.config:
        raise ValueError("resume: pass the run's own config (resume.config)")
    prepared = _prepare(config)
    if resume is not None:
        fingerprint = data_fingerprint(prepared.series)
        if resume.data_fingerprint not in (None, fingerprint):
            raise ResumeError(
                f"run {resume.run_id} trained on other data (fingerprint "
                f"{resume.data_fingerprint}, now {fingerprint}): was data.path changed, or is "
                f"this another working directory?"
            )
        # Locked before the run is reopened: a run another process trains is left as it is.
        with (
            exclusive_run(resume.checkpoint_dir, resume.run_id),
            mlflow.start_run(run_id=resume.run_id, log_system_metrics=True),
        ):
            return _train_in_run(
                config, prepared, resume.run_id, extra_callbacks, resume, (), promote
            )
    experiment = experiment_id(config.registry.experiment)
    name = run_name(config)
    with mlflow.start_run(experiment_id=experiment, run_name=name, log_system_metrics=True) as run:
        run_id = run.info.run_id
        with exclusive_run(checkpoint_dir(config, run_id), run_id):
            return _train_in_run(config, prepared, run_id, extra_callbacks, None, choices, promote)


def _train_in_run(
    config: TrainConfig,
    prepared: _Prepared,
    run_id: str,
    extra_callbacks: Sequence[Callback],
    resume: ResumePoint | None,
    choices: Sequence[Choice],
    promote: bool,
) -> TrainResult:
    dm, module = prepared.datamodule, prepared.module
    m = config.model
    tags = {"cell": m.cell, "num_layers": str(m.num_layers), "init": m.init}  # run and version
    directory = checkpoint_dir(config, run_id) if resume is None else resume.checkpoint_dir
    fingerprint = data_fingerprint(prepared.series)
    if resume is None:
        report = init_report(module.model)
        mlflow.log_params(
            {
                **config.flat(),
                "data.fingerprint": fingerprint,
                "data.num_series": len(prepared.series),
                "data.num_train_windows": dm.num_train_windows,
                "model.num_parameters": sum(p.numel() for p in module.model.parameters()),
                "trainer.threads_resolved": prepared.threads.threads,
            }
        )
        if choices:
            mlflow.log_params({f"auto.{c.key}": c.reason[:500] for c in choices})
            lines = [f"- `{c.key}` = `{c.value}`: {c.reason}" for c in choices]
            mlflow.set_tag("mlflow.note.content", "Chosen from the data:\n\n" + "\n".join(lines))
        mlflow.log_metrics(flatten_init_report(report))
        mlflow.log_dict(report, "init_report.json")
        mlflow.log_dict(config.model_dump(mode="json"), CONFIG_ARTIFACT)  # what --resume reads
        mlflow.set_tags({**tags, CHECKPOINT_DIR_TAG: str(directory)})
    else:
        mlflow.set_tags(
            {
                "resumed_after_epochs": str(resume.epochs_done),
                "resumed_threads": str(prepared.threads.threads),  # params cannot change
            }
        )
    checkpoint = resume.checkpoint if resume is not None else None
    telemetry = build_telemetry(config)
    with sigterm_noted() as sigterm, _replica_env(config, run_id, checkpoint, prepared.threads):
        callbacks = _with_stop(config, extra_callbacks, sigterm)
        trainer = build_trainer(config, run_id, telemetry, callbacks)
        try:
            if sigterm.is_set():  # during set-up: no replica is running yet
                raise SIGTERMException
            trainer.fit(module, datamodule=dm, ckpt_path=checkpoint)
        except SIGTERMException:  # training stopped after the current batch (see interrupt.py)
            mlflow.end_run("KILLED")
            last = directory / "last.ckpt"
            raise TrainingInterruptedError(run_id, last if last.is_file() else None) from None
        except NonFiniteLossError:  # the run ends FAILED, with the telemetry that explains it
            if telemetry is not None:
                log_gradient_report(telemetry.maps, telemetry.verdict())
            raise
        epochs = trainer.current_epoch
        # Restore the best checkpoint's weights and score them once more. A SIGTERM from here
        # on lets the run finish: scoring and registering take seconds.
        kept = trainer.checkpoint_callback
        assert isinstance(kept, ModelCheckpoint) and kept.best_model_path
        scores = trainer.validate(
            module, datamodule=dm, ckpt_path=kept.best_model_path, verbose=False
        )[0]
        best_epoch = checkpoint_epochs(kept.best_model_path)  # 1-based: the registered weights'
    if telemetry is not None:
        log_gradient_report(telemetry.maps, telemetry.verdict())
    best = {f"best/{k.replace('/', '_')}": float(v) for k, v in scores.items()}
    mlflow.log_metrics(best)
    baselines = dm.baseline_scores(m.season_length or config.data.seasonality)
    for name, (smape_value, mase_value) in baselines.items():
        key = f"baseline/{name.lower()}"
        mlflow.log_metrics({f"{key}_smape": smape_value, f"{key}_mase": mase_value})
    mlflow.log_metrics({"epochs_trained": epochs, "best_epoch": best_epoch})
    model_uri = log_forecaster(
        module.model, dm.val_x[:2].numpy(), name="model", data=prepared.data_contract
    )
    registration = register_model(
        model_uri,
        name=config.registry.model_name,
        alias=config.registry.alias,
        metric=config.registry.metric,
        value=float(scores[config.registry.metric]),
        tags={**tags, "best_epoch": str(best_epoch)},
        comparable=comparability_tags(
            fingerprint=fingerprint,
            horizon=m.horizon,
            val_windows=config.data.val_windows,
            val_step=config.data.val_step or m.horizon,
        ),
        promote=promote,
    )
    mlflow.set_tags(
        {
            "registered_model": registration.name,
            "registered_version": str(registration.version),
            "alias_moved": str(registration.alias_moved).lower(),
        }
    )
    return TrainResult(
        run_id,
        model_uri,
        registration,
        {k: float(v) for k, v in scores.items()},
        epochs,
        best_epoch,
        prepared.threads,
        baselines,
        len(dm.val_x),
    )


@contextmanager
def _replica_env(
    config: TrainConfig, run_id: str, checkpoint: Path | None, threads: ThreadPlan
) -> Iterator[None]:
    """Tell the DDP processes Lightning is about to start which run and config they join.

    And keep each rank's `threads`: with `OMP_NUM_THREADS` unset, Lightning's DDP launcher
    sets every rank's torch threads to its own `cores // devices`.
    """
    if config.trainer.strategy != "ddp":
        yield
        return
    omp = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads.threads)
    os.environ[REPLICA_ENV] = json.dumps(
        {
            "run_id": run_id,
            "checkpoint": str(checkpoint) if checkpoint else None,
            "config": config.model_dump(mode="json"),
        }
    )
    try:
        yield
    finally:
        os.environ.pop(REPLICA_ENV, None)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp


def is_ddp_replica() -> bool:
    """Whether Lightning's DDP launcher started this process for a rank > 0."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0


def _train_replica(extra_callbacks: Sequence[Callback]) -> None:
    """Rank > 0: train in lockstep with rank 0 in its run and config; log nothing."""
    payload = os.environ.get(REPLICA_ENV)
    if payload is None:
        raise RuntimeError(
            f"this process has LOCAL_RANK {os.environ['LOCAL_RANK']} but no {REPLICA_ENV}: start "
            f"training from one process with trainer.strategy=ddp (external launchers such as "
            f"torchrun are not supported)"
        )
    joined = json.loads(payload)
    config = TrainConfig.model_validate(joined["config"])
    prepared = _prepare(config)
    dm, module = prepared.datamodule, prepared.module
    with sigterm_noted() as sigterm:
        callbacks = _with_stop(config, extra_callbacks, sigterm)
        trainer = build_trainer(config, joined["run_id"], build_telemetry(config), callbacks)
        try:
            trainer.fit(module, datamodule=dm, ckpt_path=joined["checkpoint"])
        except SIGTERMException:
            return  # every rank stopped at the same step; rank 0 ends the run
        trainer.validate(module, datamodule=dm, ckpt_path="best", verbose=False)


def _with_stop(
    config: TrainConfig, callbacks: Sequence[Callback], sigterm: threading.Event
) -> list[Callback]:
    """Under DDP, add the callback that stops all ranks together on SIGTERM."""
    if config.trainer.strategy != "ddp":
        return list(callbacks)  # Lightning's own handling is safe in one process
    return [*callbacks, SynchronizedStop(sigterm)]
