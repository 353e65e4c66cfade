"""Windows every series once into tensors and serves shuffled batches of them."""

from __future__ import annotations

import math
from collections.abc import Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from stackcast.training.baselines import naive2
from stackcast.training.metrics import mase, mase_scale, smape


class WindowTensors(Dataset[tuple[torch.Tensor, ...]]):
    """Pre-built tensors indexed by a whole batch of rows at once (no per-sample collate)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, rows: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(rows)
        return tuple(t[index] for t in self.tensors)


class ShardedBatches(Sampler[list[int]]):
    """One rank's share of an epoch's shuffled batches, for distributed (DDP) training.

    Every rank draws the same order, a function of (seed, epoch) only (Lightning calls
    `set_epoch`), cuts it into batches and keeps every `world_size`-th batch from `rank` on.
    So the ranks' batches are disjoint and together cover the epoch; ranks that come up one
    batch short repeat their first one, because every rank must take the same number of steps.
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        *,
        rank: int,
        world_size: int,
        seed: int,
        samples_per_epoch: int | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.num_rows, self.batch_size = num_rows, batch_size
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.num_samples = samples_per_epoch or num_rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch: the next epoch's order."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(math.ceil(self.num_samples / self.batch_size) / self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        # As RandomSampler without replacement: whole permutations, the last one cut short.
        rounds = math.ceil(self.num_samples / self.num_rows)
        perms = [torch.randperm(self.num_rows, generator=generator) for _ in range(rounds)]
        order = torch.cat(perms)
        batches = torch.split(order[: self.num_samples], self.batch_size)
        mine = batches[self.rank :: self.world_size]
        mine += batches[self.rank : self.rank + len(self) - len(mine)]  # pad: equal step counts
        return (batch.tolist() for batch in mine)


def _windows(values: np.ndarray, length: int, stride: int) -> np.ndarray:
    """All windows of `length` points with the given stride: (n_windows, length)."""
    view = np.lib.stride_tricks.sliding_window_view(values, length)
    return view[::stride]


class SeriesDataModule(L.LightningDataModule):
    """Time-split windows of many series.

    Validation is the last `horizon` points of every series, predicted from the `input_size`
    points before them. Training windows end (targets included) before that span starts, so
    nothing from the validation span leaks into training.
    """

    def __init__(
        self,
        series: dict[str, np.ndarray],
        *,
        input_size: int,
        horizon: int,
        batch_size: int,
        stride: int = 1,
        samples_per_epoch: int | None = None,
        seasonality: int = 24,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.ids = list(series)
        self.batch_size = batch_size
        self.samples_per_epoch = samples_per_epoch
        self.seasonality = seasonality
        self.seed = seed  # of the shared batch order under DDP (see ShardedBatches)
        window = input_size + horizon
        short = {k: len(v) for k, v in series.items() if len(v) < window}
        if short:
            raise ValueError(
                f"{len(short)} series are shorter than input_size + horizon = {window}: "
                f"{dict(list(short.items())[:5])}"
            )
        train_parts = [v[:-horizon].astype(np.float32) for v in series.values()]
        chunks = [_windows(p, window, stride) for p in train_parts if len(p) >= window]
        if not chunks:
            raise ValueError(
                f"no training windows: every series needs at least input_size + 2 * horizon "
                f"= {input_size + 2 * horizon} points (the last {horizon} are for validation)"
            )
        train = torch.from_numpy(np.concatenate(chunks))  # (N, T + H)
        self.train_x, self.train_y = train[:, :input_size], train[:, input_size:]
        # Validation: one window per series, (S, T) -> (S, H).
        val_x = np.stack([v[-window:-horizon] for v in series.values()]).astype(np.float32)
        val_y = np.stack([v[-horizon:] for v in series.values()]).astype(np.float32)
        # MASE scale and Naive2 come from the training part only (the validation span excluded).
        # MASE scale per series; lag 1 when a training part is no longer than a season.
        scale = [mase_scale(p, seasonality if len(p) > seasonality else 1) for p in train_parts]
        self.val_insample = [p.astype(np.float64) for p in train_parts]  # per series (n_i - H,)
        self.val_naive2 = naive2(self.val_insample, horizon, seasonality)  # (S, H)
        self.val_x, self.val_y = torch.from_numpy(val_x), torch.from_numpy(val_y)
        self.val_mase_scale = torch.tensor(scale, dtype=torch.float32).clamp_min(1e-8)

    def naive2_scores(self) -> tuple[float, float]:
        """Naive2's (sMAPE, MASE) on the validation windows: the reference that makes OWA."""
        y = self.val_y.numpy().astype(np.float64)  # (S, H)
        return (
            float(smape(y, self.val_naive2).mean()),
            float(mase(self.val_insample, y, self.val_naive2, self.seasonality).mean()),
        )

    @property
    def num_train_windows(self) -> int:
        """Number of training windows built."""
        return len(self.train_x)

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Shuffled batches; `samples_per_epoch` windows per epoch when set.

        One process: drawn from torch's global generator (seeded, and restored on resume).
        Under DDP each rank gets its own shard of the epoch's batches (`ShardedBatches`).
        """
        data = WindowTensors(self.train_x, self.train_y)
        batches: Sampler[list[int]]
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            batches = ShardedBatches(
                len(data),
                self.batch_size,
                rank=trainer.global_rank,
                world_size=trainer.world_size,
                seed=self.seed,
                samples_per_epoch=self.samples_per_epoch,
            )
        else:
            sampler = RandomSampler(data, num_samples=self.samples_per_epoch)
            batches = BatchSampler(sampler, self.batch_size, drop_last=False)
        return DataLoader(data, sampler=batches, batch_size=None)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """The validation windows with each series' MASE scale, in series order.

        Every rank validates on all of them (no sharding: the metrics are means over series,
        and a sharded, padded split would count some series twice).
        """
        data = WindowTensors(self.val_x, self.val_y, self.val_mase_scale)
        batches = BatchSampler(SequentialSampler(data), max(self.batch_size, 1024), drop_last=False)
        return DataLoader(data, sampler=batches, batch_size=None)
