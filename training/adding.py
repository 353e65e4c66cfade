"""The adding problem: a long-range dependency task that makes recurrent gradients vanish.

Hochreiter & Schmidhuber (1997); the version of Le, Jaitly & Hinton (2015, IRNN). Each
sequence has T steps of two inputs: a value drawn from U(0, 1) and a marker that is 1 at
exactly two steps, one in each half of the sequence, and 0 elsewhere. The target is the sum
of the two marked values. The answer depends on an input up to T steps back; always answering
1 (the mean) gives a mean squared error of 1/6, the bar to beat.

It maps onto `StackedRNNForecaster` unchanged: the window interleaves (value, marker) pairs,
`patch_size=2` feeds one pair per recurrent step, `horizon=1`, `scaling="none"`.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from stackcast.models import ModelConfig
from stackcast.training.datamodule import WindowTensors

BASELINE_MSE = 1 / 6  # always predicting 1: Var(U1 + U2) = 2/12


def adding_problem(count: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` sequences of `length` steps: windows (count, 2 * length), targets (count, 1)."""
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2, got {length}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, (count, length)).astype(np.float32)
    markers = np.zeros((count, length), dtype=np.float32)
    rows = np.arange(count)
    half = length // 2
    first, second = rng.integers(0, half, count), rng.integers(half, length, count)
    markers[rows, first] = markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    windows = np.stack([values, markers], axis=2).reshape(count, 2 * length)  # v1 m1 v2 m2 ...
    return torch.from_numpy(windows), torch.from_numpy(target[:, None])


def adding_model_config(length: int, **options: object) -> ModelConfig:
    """A `ModelConfig` that reads one (value, marker) pair per step and predicts the sum."""
    settings: dict[str, object] = {
        "input_size": 2 * length,
        "patch_size": 2,
        "horizon": 1,
        "scaling": "none",
        "season_length": None,
    }
    settings.update(options)
    return ModelConfig.model_validate(settings)


class AddingDataModule(L.LightningDataModule):
    """Fixed train and validation sets of the adding problem, as tensors."""

    def __init__(self, length: int, train: int, val: int, batch_size: int, seed: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.train_x, self.train_y = adding_problem(train, length, seed)
        self.val_x, self.val_y = adding_problem(val, length, seed + 1)

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Shuffled batches of training sequences."""
        data = WindowTensors(self.train_x, self.train_y)
        batches = BatchSampler(RandomSampler(data), self.batch_size, drop_last=False)
        return DataLoader(data, sampler=batches, batch_size=None)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """The validation sequences (a unit MASE scale: the forecasting metrics mean little)."""
        data = WindowTensors(self.val_x, self.val_y, torch.ones(len(self.val_y)))
        batches = BatchSampler(SequentialSampler(data), 1024, drop_last=False)
        return DataLoader(data, sampler=batches, batch_size=None)
