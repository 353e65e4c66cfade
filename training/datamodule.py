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

from stackcast.models import ModelConfig
from stackcast.models.contract import min_history, model_inputs
from stackcast.training.baselines import naive1, naive2, seasonal_naive
from stackcast.training.data import SeriesTooShortError
from stackcast.training.metrics import mase_scale, smape


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


def min_series_length(model: ModelConfig, val_windows: int = 1, val_step: int | None = None) -> int:
    """The fewest points a series needs: context for its earliest validation origin + targets.

    The context is one season (`min_history`) with `padding="mask"` and a whole `input_size`
    with `padding="season"`. A series also trains once it has `horizon` points more: the
    shortest training window is that context plus its target.
    """
    context = min_history(model) if model.padding == "mask" else model.input_size
    return context + validation_span(model.horizon, val_windows, val_step)


def validation_span(horizon: int, val_windows: int, val_step: int | None) -> int:
    """Points at the end of each series that are validation targets (never training targets)."""
    return horizon + (val_windows - 1) * (val_step or horizon)


class SeriesDataModule(L.LightningDataModule):
    """Time-split windows of many series, with rolling-origin validation.

    Validation targets are the last `val_windows` forecast origins of every series, `val_step`
    points apart (default: the horizon, so targets tile the end of the series); each is
    predicted from the history before it. Training windows end (targets included) before the
    first validation target, so no training target overlaps any validation target. Every
    input window, training or validation, comes from the one window policy
    (`stackcast.models.window`): histories shorter than `input_size` are padded as the model
    says (`padding="mask"`: NaN-masked, down to one season of context).
    """

    def __init__(
        self,
        series: dict[str, np.ndarray],
        *,
        model: ModelConfig,
        batch_size: int,
        stride: int = 1,
        samples_per_epoch: int | None = None,
        seasonality: int = 24,
        seed: int = 0,
        val_windows: int = 1,
        val_step: int | None = None,
        history_limit: int | None = None,
    ) -> None:
        super().__init__()
        self.ids = list(series)
        self.batch_size = batch_size
        self.samples_per_epoch = samples_per_epoch
        self.seasonality = seasonality
        self.seed = seed  # of the shared batch order under DDP (see ShardedBatches)
        input_size, horizon = model.input_size, model.horizon
        step = val_step or horizon
        span = validation_span(horizon, val_windows, step)
        need = min_series_length(model, val_windows, step)
        short = {k: len(v) for k, v in series.items() if len(v) < need}
        if short:
            raise SeriesTooShortError(
                f"{len(short)} series have fewer than the {need} points a series needs "
                f"({need - span} of context, then {val_windows} validation window(s) of "
                f"{horizon}, {step} apart): {dict(list(short.items())[:5])}. Drop them "
                "(data.drop_short: true), or shorten model.horizon or data.val_windows"
            )
        train_parts = [v[:-span].astype(np.float32) for v in series.values()]
        recent = train_parts
        if history_limit is not None:  # targets end in the last `history_limit` points
            recent = [p[-(history_limit + input_size + horizon - 1) :] for p in train_parts]
        x_parts, y_parts = self._training_windows(recent, model, stride, history_limit)
        if not x_parts:
            raise SeriesTooShortError(
                f"no training windows: a series needs at least {need + horizon} points to train "
                f"(the last {span} are validation targets)"
            )
        self.train_x = torch.from_numpy(np.concatenate(x_parts))  # (N, T)
        self.train_y = torch.from_numpy(np.concatenate(y_parts))  # (N, H)
        # Validation: rolling origins, series by series, earliest first: (S * W, T) -> (S * W, H).
        # MASE scale from each series' training part (targets excluded), once per series; lag 1
        # when the part is no longer than a season. Naive2 from each window's own history.
        histories, targets, insample, scale, self.val_index = [], [], [], [], []
        for uid, values, part in zip(self.ids, series.values(), train_parts, strict=True):
            part64 = part.astype(np.float64)
            part_scale = mase_scale(part64, seasonality if len(part64) > seasonality else 1)
            for j in reversed(range(val_windows)):
                origin = len(values) - horizon - j * step
                histories.append(values[:origin])
                targets.append(values[origin : origin + horizon])
                insample.append(part64)  # the same array for every window of the series
                scale.append(part_scale)
                self.val_index.append((uid, origin))
        self.val_x = torch.from_numpy(model_inputs(histories, model))
        self.val_y = torch.from_numpy(np.stack(targets).astype(np.float32))
        self.val_insample = insample  # per validation row, its series' training part
        self.val_histories = [h.astype(np.float64) for h in histories]
        self.val_naive2 = naive2(self.val_histories, horizon, seasonality)  # (S * W, H)
        self._mase_scale = np.maximum(np.array(scale), 1e-8)  # (S * W,) float64
        self.val_mase_scale = torch.tensor(scale, dtype=torch.float32).clamp_min(1e-8)

    @staticmethod
    def _training_windows(
        parts: list[np.ndarray], model: ModelConfig, stride: int, history_limit: int | None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Inputs and targets of every training window: full ones, then padded ones (mask).

        `parts` are already cut to the points full windows may use; a padded window (its
        context shorter than `input_size`) is kept when its target ends in the last
        `history_limit` points.
        """
        input_size, horizon = model.input_size, model.horizon
        xs, ys = [], []
        for part in parts:
            if len(part) >= input_size + horizon:
                full = _windows(part, input_size + horizon, stride)  # (n, T + H)
                xs.append(full[:, :input_size])
                ys.append(full[:, input_size:])
            if model.padding != "mask":
                continue
            # Context shorter than the window: from one season up, every `stride` points.
            first = min_history(model)
            if history_limit is not None:
                first = max(first, len(part) - history_limit - horizon + 1)
            contexts = range(first, min(input_size, len(part) - horizon + 1), stride)
            if len(contexts):
                xs.append(model_inputs([part[:c] for c in contexts], model))
                ys.append(np.stack([part[c : c + horizon] for c in contexts]))
        return xs, ys

    def naive2_scores(self) -> tuple[float, float]:
        """Naive2's (sMAPE, MASE) on the validation windows: the reference that makes OWA."""
        return self._scores(self.val_naive2)

    def baseline_scores(self, season_length: int) -> dict[str, tuple[float, float]]:
        """(sMAPE, MASE) of Naive1, sNaive (`season_length`) and Naive2 on the validation windows.

        Each baseline forecasts from its window's own history; scores are means over windows.
        """
        horizon = self.val_y.shape[1]
        forecasts = {
            "Naive1": naive1(self.val_histories, horizon),
            "sNaive": seasonal_naive(self.val_histories, horizon, season_length),
            "Naive2": self.val_naive2,
        }
        return {name: self._scores(f) for name, f in forecasts.items()}

    def _scores(self, forecast: np.ndarray) -> tuple[float, float]:
        """(sMAPE, MASE) of `forecast` (S * W, H), means over the validation windows."""
        y = self.val_y.numpy().astype(np.float64)
        mase_value = (np.abs(y - forecast).mean(axis=1) / self._mase_scale).mean()
        return float(smape(y, forecast).mean()), float(mase_value)

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
