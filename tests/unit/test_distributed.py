"""DDP pieces that need no processes: each rank's shard of the batches, and the config keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stackcast.training.config import load_config
from stackcast.training.datamodule import ShardedBatches


def shards(
    num_rows: int, batch_size: int, world_size: int, epoch: int = 0, **kwargs: int
) -> list[list[list[int]]]:
    """Every rank's batches of one epoch."""
    ranks = []
    for rank in range(world_size):
        sampler = ShardedBatches(
            num_rows, batch_size, rank=rank, world_size=world_size, seed=7, **kwargs
        )
        sampler.set_epoch(epoch)
        ranks.append(list(sampler))
        assert len(ranks[-1]) == len(sampler)
    return ranks


def test_ranks_get_disjoint_batches_that_cover_the_epoch() -> None:
    rank0, rank1 = shards(num_rows=100, batch_size=10, world_size=2)
    rows0 = [row for batch in rank0 for row in batch]
    rows1 = [row for batch in rank1 for row in batch]
    assert len(rank0) == len(rank1) == 5
    assert not set(rows0) & set(rows1)
    assert sorted(rows0 + rows1) == list(range(100))  # each window exactly once


def test_a_rank_short_of_a_batch_repeats_one_so_step_counts_match() -> None:
    # 95 rows in batches of 10: 10 batches (the last of 5) over 3 ranks -> 4, 3, 3 -> pad to 4.
    ranks = shards(num_rows=95, batch_size=10, world_size=3)
    assert [len(r) for r in ranks] == [4, 4, 4]
    seen = [row for r in ranks for batch in r for row in batch]
    assert set(seen) == set(range(95))
    assert len(seen) == 95 + 2 * 10  # two ranks repeat one full batch each


def test_the_order_depends_on_seed_and_epoch_only() -> None:
    assert shards(50, 8, 2, epoch=3) == shards(50, 8, 2, epoch=3)  # every rank draws alike
    assert shards(50, 8, 2, epoch=3) != shards(50, 8, 2, epoch=4)


def test_samples_per_epoch_draws_whole_permutations() -> None:
    ranks = shards(num_rows=10, batch_size=5, world_size=2, samples_per_epoch=25)
    rows = [row for r in ranks for batch in r for row in batch]
    assert len(rows) == 25 + 5  # 5 batches of 5 over 2 ranks: one padded
    assert all(rows.count(i) >= 2 for i in range(10))  # two full passes, then part of a third


def test_bad_rank_is_refused() -> None:
    with pytest.raises(ValueError, match="rank"):
        ShardedBatches(10, 2, rank=2, world_size=2, seed=0)


def test_ddp_keys_are_typed_and_checked() -> None:
    config = load_config(overrides=["trainer.strategy=ddp", "trainer.devices=2"])
    assert (config.trainer.strategy, config.trainer.devices) == ("ddp", 2)
    assert load_config().trainer.devices == 1
    with pytest.raises(ValidationError, match=r"trainer.devices=2 needs trainer.strategy='ddp'"):
        load_config(overrides=["trainer.devices=2"])
    with pytest.raises(ValidationError, match="'auto' or 'ddp'"):
        load_config(overrides=["trainer.strategy=fsdp"])
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        load_config(overrides=["trainer.devices=0"])
