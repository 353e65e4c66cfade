"""Find an interrupted run and what `stackcast train --resume` needs to continue it.

A run can be resumed when its process died (it stays RUNNING), was stopped by SIGTERM
(KILLED), or failed after saving a checkpoint (FAILED). It is continued with the config it
logged (`config.json`), from the `last.ckpt` it left in its checkpoint directory (the run's
tag `checkpoint_dir`), into the same MLflow run.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import torch
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from stackcast.training.config import TrainConfig

CONFIG_ARTIFACT = "config.json"
CHECKPOINT_DIR_TAG = "checkpoint_dir"  # absolute: a resume may start from another directory
LAST_CHECKPOINT = "last.ckpt"
RESUMABLE = ("RUNNING", "KILLED", "FAILED")
SAFE_TO_CHANGE = frozenset({"trainer.progress_bar"})  # keys that cannot change the result


class ResumeError(ValueError):
    """The run cannot be resumed: the message says why and what to do."""


@dataclass(frozen=True)
class ResumePoint:
    """An interrupted run and where to continue it from."""

    run_id: str
    config: TrainConfig  # the run's own, as it logged it
    checkpoint_dir: Path
    checkpoint: Path | None  # None: the run died before its first epoch ended
    epochs_done: int  # epochs the checkpoint holds
    data_fingerprint: str | None


def checkpoint_dir(config: TrainConfig, run_id: str) -> Path:
    """Where a run's checkpoints go: `trainer.checkpoint_dir/<run id>`, absolute."""
    return (Path(config.trainer.checkpoint_dir) / run_id).resolve()


def checkpoint_epochs(checkpoint: Path | str) -> int:
    """The epochs a checkpoint holds, i.e. the 1-based number of the epoch it ended."""
    # Lightning's "epoch" is the 0-based index of the epoch whose end the checkpoint saved.
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"]) + 1


def _run_config(run: Run) -> TrainConfig:
    uri = f"runs:/{run.info.run_id}/{CONFIG_ARTIFACT}"
    try:
        tree = mlflow.artifacts.load_dict(uri)
    except (MlflowException, OSError) as error:
        raise ResumeError(
            f"run {run.info.run_id} has no {CONFIG_ARTIFACT} artifact (it was started before "
            f"runs could be resumed, or died before logging it); start a new run instead"
        ) from error
    return TrainConfig.model_validate(tree)


def _point(run: Run) -> ResumePoint:
    config = _run_config(run)
    tag = run.data.tags.get(CHECKPOINT_DIR_TAG)
    directory = Path(tag) if tag else checkpoint_dir(config, run.info.run_id)
    last = directory / LAST_CHECKPOINT
    checkpoint = last if last.is_file() else None
    epochs = checkpoint_epochs(checkpoint) if checkpoint is not None else 0
    return ResumePoint(
        run.info.run_id,
        config,
        directory,
        checkpoint,
        epochs,
        run.data.params.get("data.fingerprint"),
    )


def _resumable(run: Run) -> bool:
    if run.info.status not in RESUMABLE:
        return False
    if run.info.status == "FAILED":  # e.g. a NaN loss: resumable only from a checkpoint it kept
        tag = run.data.tags.get(CHECKPOINT_DIR_TAG)
        return bool(tag) and (Path(tag) / LAST_CHECKPOINT).is_file()
    return CHECKPOINT_DIR_TAG in run.data.tags  # logged with the config, at the run's start


def find_resume_point(run_id: str | None, config: TrainConfig) -> ResumePoint:
    """The run to continue: `run_id`, or the latest resumable run of `config`'s experiment.

    Raises:
        ResumeError: no such run, it finished, or it lacks what a resume needs.
    """
    client = MlflowClient()
    if run_id is not None:
        try:
            run = client.get_run(run_id)
        except MlflowException as error:
            raise ResumeError(f"no run {run_id} in {mlflow.get_tracking_uri()}") from error
        if run.info.status not in RESUMABLE:
            raise ResumeError(f"run {run_id} is {run.info.status}: nothing to resume")
        return _point(run)
    name = config.registry.experiment
    experiment = client.get_experiment_by_name(name)
    runs = []
    if experiment is not None:
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string="attributes.status != 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=50,
        )
    for run in runs:
        if _resumable(run):
            return _point(run)
    raise ResumeError(
        f"no interrupted run in experiment '{name}' to resume (pass the run id, or the "
        f"--config/--set that name its experiment)"
    )


def config_conflicts(given: TrainConfig, logged: TrainConfig) -> list[str]:
    """Keys where `given` differs from the run's `logged` config, as `key: run X, given Y`."""
    ours, theirs = given.flat(), logged.flat()
    return [
        f"{key}: the run has {theirs[key]!r}, the command {ours[key]!r}"
        for key in theirs
        if key not in SAFE_TO_CHANGE and ours[key] != theirs[key]
    ]


@contextmanager
def exclusive_run(directory: Path, run_id: str) -> Iterator[None]:
    """Hold the run's checkpoint directory while training it.

    A second process resuming the same run fails at once instead of writing into it too. The
    lock (`flock` on the directory) is released by the kernel when the holder exits,
    however it exits.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResumeError(f"run {run_id} is being trained by another process") from None
        yield
    finally:
        os.close(fd)
