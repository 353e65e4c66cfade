"""Resuming in process: the library API behind `stackcast train --resume`, and its refusals."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from mlflow.tracking import MlflowClient

from stackcast.models import StackedRNNForecaster
from stackcast.training.module import ForecastModule
from stackcast.training.resume import ResumeError, exclusive_run, find_resume_point
from stackcast.training.train import (
    TrainingInterruptedError,
    build_datamodule,
    build_telemetry,
    build_trainer,
    load_training_series,
    train,
)
from tests.conftest import TinyConfig

pytestmark = pytest.mark.slow


@dataclasses.dataclass(eq=False)
class SigtermAt(Callback):
    """Send this process SIGTERM once training reaches `step`."""

    step: int

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


@dataclasses.dataclass(eq=False)
class StopAfterEpoch(Callback):
    """Decide to stop at the end of `epoch`, as early stopping does."""

    epoch: int

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


@dataclasses.dataclass(eq=False)
class WorseAt(Callback):
    """Scale every weight by 10 just before validating `epoch` (0-based).

    That epoch's val/loss is far worse than the best so far, and its end is still checkpointed
    with those weights, deterministically.
    """

    epoch: int

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            with torch.no_grad():
                for weight in pl_module.parameters():
                    weight.mul_(10.0)


def test_sigterm_kills_the_run_and_train_resume_finishes_it(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    config = tiny_config(trainer={"max_epochs": 3})
    with pytest.raises(TrainingInterruptedError, match="stackcast train --resume") as stopped:
        train(config, extra_callbacks=[SigtermAt(step=30)])  # in epoch 2 of 3 (22 steps each)
    run_id = stopped.value.run_id
    client = MlflowClient()
    assert client.get_run(run_id).info.status == "KILLED"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back

    point = find_resume_point(None, config)  # the latest interrupted run of the experiment
    assert (point.run_id, point.epochs_done, point.config) == (run_id, 1, config)
    assert point.checkpoint == stopped.value.checkpoint

    # Other data under the same path: refused before the run is touched.
    with pytest.raises(ResumeError, match="trained on other data"):
        train(config, resume=dataclasses.replace(point, data_fingerprint="0" * 16))
    assert client.get_run(run_id).info.status == "KILLED"

    result = train(point.config, resume=point)
    assert result is not None
    assert (result.run_id, result.epochs, result.registration.version) == (run_id, 3, 1)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["resumed_after_epochs"] == "1"
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [21, 43, 65]


def test_resume_continues_after_the_last_epoch_even_if_it_did_not_improve(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    config = tiny_config(trainer={"max_epochs": 4})
    with pytest.raises(TrainingInterruptedError) as stopped:  # in epoch 3, after a worse epoch 2
        train(config, extra_callbacks=[WorseAt(epoch=1), SigtermAt(step=50)])
    run_id = stopped.value.run_id
    val_loss = [m.value for m in MlflowClient().get_metric_history(run_id, "val/loss")]
    assert len(val_loss) == 2 and val_loss[1] > val_loss[0]  # epoch 2 did not improve

    point = find_resume_point(run_id, config)
    assert point.epochs_done == 2  # not 1, the last improvement
    assert point.checkpoint is not None and point.checkpoint.name == "last.ckpt"
    assert (point.checkpoint_dir / "best-epoch=0.ckpt").is_file()  # the best stays epoch 1's

    result = train(point.config, resume=point)
    assert result is not None and result.epochs == 4
    client = MlflowClient()
    assert client.get_run(run_id).data.tags["resumed_after_epochs"] == "2"
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [21, 43, 65, 87]


@dataclasses.dataclass(eq=False)
class TrackedAtCheckpoint(Callback):
    """At each checkpoint save: the steps of `keys` MLflow holds for the run at that moment."""

    keys: tuple[str, ...]
    seen: list[tuple[int, dict[str, list[int]]]] = dataclasses.field(default_factory=list)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        client, run_id = MlflowClient(), trainer.logger.run_id  # type: ignore[union-attr]
        steps = {k: [m.step for m in client.get_metric_history(run_id, k)] for k in self.keys}
        self.seen.append((trainer.global_step - 1, steps))


def test_every_epoch_point_reaches_mlflow_before_the_checkpoint_that_ends_the_epoch(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    # A process killed right after a checkpoint resumes from it: whatever the epoch logged
    # after the save would be missing from the run for good.
    keys = ("train/loss", "val/loss", "grad/norm_pre_clip", "grad/clipped")
    probe = TrackedAtCheckpoint(keys)
    config = tiny_config(trainer={"max_epochs": 3, "gradient_clip_val": 0.5})
    assert train(config, extra_callbacks=[probe]) is not None
    assert [step for step, _ in probe.seen] == [21, 21, 43, 43, 65, 65]  # best, then last
    for step, steps in probe.seen:
        assert all(steps[k][-1] == step for k in keys), (step, steps)


def test_a_run_that_stopped_early_trains_no_further_when_resumed(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    config = tiny_config(trainer={"max_epochs": 5})
    result = train(config, extra_callbacks=[StopAfterEpoch(epoch=1)])
    assert result is not None and result.epochs == 2
    # As if it had been killed after its last checkpoint (while scoring or registering).
    last = Path(config.trainer.checkpoint_dir).resolve() / result.run_id / "last.ckpt"
    m = config.model
    data = build_datamodule(config, load_training_series(config.data, m.input_size + m.horizon))
    module = ForecastModule(StackedRNNForecaster(m), config.optim, val_naive2=data.naive2_scores())
    trainer = build_trainer(config, result.run_id, build_telemetry(config))
    trainer.fit(module, datamodule=data, ckpt_path=last)
    assert (trainer.current_epoch, trainer.global_step) == (2, 44)  # no third epoch


def test_nothing_to_resume_and_a_run_in_use_are_refused(
    mlflow_store: str, tiny_config: TinyConfig, tmp_path: Path
) -> None:
    with pytest.raises(ResumeError, match="no interrupted run in experiment 'tests'"):
        find_resume_point(None, tiny_config())
    with pytest.raises(ResumeError, match="no run abc"):
        find_resume_point("abc", tiny_config())
    with (
        exclusive_run(tmp_path / "run", "r1"),
        pytest.raises(ResumeError, match="run r1 is being trained by another process"),
        exclusive_run(tmp_path / "run", "r1"),
    ):
        pass
    with exclusive_run(tmp_path / "run", "r1"):  # released when its holder is done
        pass
