"""Each step's training loss on the host, without making the host wait for the device.

Reading a CUDA loss (`float(loss)`, `bool(torch.isfinite(loss))`) blocks the Python loop until
the GPU has finished the step, so the next step's kernels cannot be queued behind it. On an
accelerator the loss is copied to pinned host memory asynchronously instead, and read one step
later, when that copy finished long ago; a NaN is then caught one step after it appeared (its
own step number is reported), never missed: `settle` reads the last one at the end. On the CPU
there is nothing to wait for and each loss is read at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class StepLoss:
    """A training loss as read on the host, with where it was computed."""

    value: float
    step: int
    epoch: int
    batch_idx: int


class LossWatch:
    """Hands back each step's loss as a float once it is on the host."""

    def __init__(self) -> None:
        self._pending: tuple[torch.Tensor, torch.Event | None, tuple[int, int, int]] | None
        self._pending = None

    def push(self, loss: torch.Tensor, step: int, epoch: int, batch_idx: int) -> StepLoss | None:
        """Queue this step's loss; return the loss now known (this one on CPU, else the last)."""
        known = self.settle()
        where = (step, epoch, batch_idx)
        if loss.device.type == "cuda":
            host = torch.empty((), dtype=loss.dtype, pin_memory=True)
            host.copy_(loss.detach(), non_blocking=True)
            done = torch.Event(device=loss.device)
            done.record()  # on the current stream, after the copy
            self._pending = (host, done, where)
            return known
        self._pending = (loss.detach(), None, where)
        return self.settle()

    def push_output(self, outputs: Any, step: int, epoch: int, batch_idx: int) -> StepLoss | None:
        """`push` the loss in a training step's `outputs`; a skipped step (None) only settles."""
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:  # the module skipped this step
            return self.settle()
        return self.push(loss, step, epoch, batch_idx)

    def settle(self) -> StepLoss | None:
        """The queued loss, waiting for its copy if needed (at once: it was queued a step ago)."""
        if self._pending is None:
            return None
        host, done, where = self._pending
        self._pending = None
        if done is not None:
            done.synchronize()
        return StepLoss(float(host), *where)
