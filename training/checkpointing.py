"""What a checkpoint must hold for `--resume` to continue a run as if it never stopped.

Lightning's checkpoints already restore the weights, the optimizer, the loops, early stopping's
counters and the best checkpoint so far. `last_checkpoint` writes the checkpoint a resume starts
from at the end of every epoch. Two things are missing, and added here as callbacks whose state
travels in the checkpoint:

- the random state: the training batches are drawn from torch's global generator, so without
  it a resumed run would see other batches than the uninterrupted run (and end elsewhere);
- early stopping's decision: if the run stopped early and was cut off after its last
  checkpoint (while scoring or registering), a resumed fit must not train another epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from stackcast.training.resume import LAST_CHECKPOINT


def last_checkpoint(directory: Path) -> ModelCheckpoint:
    """A checkpoint of every epoch's end, overwritten each time: `directory/last.ckpt`.

    Not `save_last=True` on the best-checkpoint callback: since Lightning 2.6 that writes
    `last.ckpt` only at steps where a top-k checkpoint is saved, i.e. when validation improves,
    so a resume would restart from the last improvement. Unmonitored with `save_top_k=1`, this
    callback saves at every epoch's end (Lightning's `monitor=None`), always under one name.
    """
    return ModelCheckpoint(
        dirpath=directory,
        filename=Path(LAST_CHECKPOINT).stem,
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,  # overwrite last.ckpt, also after a resume
    )


class RandomState(Callback):
    """Saves torch's CPU and CUDA generators with each checkpoint; restores them on resume.

    The checkpoint is written at the end of an epoch, after the last draw of that epoch, so a
    restored generator gives the next epoch the shuffle the uninterrupted run would have drawn.
    """

    def state_dict(self) -> dict[str, Any]:
        """The generators' states, as tensors (loadable with `weights_only=True`)."""
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"torch": torch.get_rng_state(), "torch.cuda": cuda}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Put the generators back where the checkpoint left them."""
        torch.set_rng_state(state_dict["torch"])
        if state_dict["torch.cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["torch.cuda"])


class ResumableEarlyStopping(EarlyStopping):
    """Early stopping that remembers, across a resume, that it already stopped the run.

    (Lightning keeps its counters, but `trainer.should_stop` is not in the checkpoint.)
    """

    stopped = False

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Lightning's check; then note whether training stops (before the checkpoint is saved)."""
        super().on_train_epoch_end(trainer, pl_module)
        self.stopped = self.stopped or trainer.should_stop

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The same, for runs that check after validation instead."""
        super().on_validation_end(trainer, pl_module)
        self.stopped = self.stopped or trainer.should_stop

    def state_dict(self) -> dict[str, Any]:
        """Lightning's counters and whether training has stopped."""
        return {**super().state_dict(), "stopped": self.stopped}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the counters and the decision."""
        super().load_state_dict(state_dict)
        self.stopped = bool(state_dict.get("stopped", False))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After a resume from the stopping epoch's checkpoint: stop before another epoch."""
        super().on_train_start(trainer, pl_module)
        if self.stopped:
            trainer.should_stop = True
