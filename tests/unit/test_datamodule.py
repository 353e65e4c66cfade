from __future__ import annotations

import numpy as np
import pytest
import torch

from stackcast.training.datamodule import SeriesDataModule

pytestmark = pytest.mark.unit

T, H, M = 4, 3, 2  # input_size, horizon, seasonality
OFFSET = 1000  # series i holds OFFSET * i + (time index + 1): value -> (series, time)
# 8 points: T + H <= 8 < T + 2H, so validation only; the others also train
LENGTHS = {"a": 20, "b": 15, "short": 8, "c": 11}


def make_series(lengths: dict[str, int] = LENGTHS) -> dict[str, np.ndarray]:
    return {
        name: OFFSET * i + np.arange(n, dtype=float) + 1
        for i, (name, n) in enumerate(lengths.items())
    }


def make_dm(stride: int = 1, **kwargs: object) -> SeriesDataModule:
    options: dict[str, object] = {"batch_size": 4, "seasonality": M}
    options.update(kwargs)
    return SeriesDataModule(
        make_series(),
        input_size=T,
        horizon=H,
        stride=stride,
        **options,  # type: ignore[arg-type]
    )


def expected_windows(n: int, stride: int) -> int:
    if n - H < T + H:
        return 0
    return (n - H - (T + H)) // stride + 1


def decode(values: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Series index and 1-based time index of every value."""
    v = values.numpy().astype(np.int64)
    return v // OFFSET, v % OFFSET


@pytest.mark.parametrize("stride", [1, 3])
def test_no_training_window_touches_the_validation_span(stride: int) -> None:
    dm = make_dm(stride)
    lengths = list(LENGTHS.values())
    windows = torch.cat([dm.train_x, dm.train_y], dim=1)  # (N, T + H)
    series, time = decode(windows)
    # each window lies in one series and is consecutive in time
    assert (series == series[:, :1]).all()
    assert (np.diff(time, axis=1) == 1).all()
    limit = np.array([lengths[s] - H for s in series[:, 0]])
    assert (time.max(axis=1) <= limit).all()
    # ...and the last training window of each series ends right at the limit (stride 1)
    if stride == 1:
        for i, n in enumerate(lengths):
            rows = series[:, 0] == i
            if rows.any():
                assert time[rows].max() == n - H


def test_targets_continue_their_inputs() -> None:
    dm = make_dm()
    assert dm.train_x.shape[1] == T
    assert dm.train_y.shape[1] == H
    assert torch.equal(dm.train_y[:, 0], dm.train_x[:, -1] + 1)


def test_validation_is_the_last_input_size_plus_horizon_points_split_at_input_size() -> None:
    dm = make_dm()
    series = make_series()
    assert dm.val_x.shape == (len(series), T)
    assert dm.val_y.shape == (len(series), H)
    for i, values in enumerate(series.values()):
        last = values[-(T + H) :]
        np.testing.assert_array_equal(dm.val_x[i].numpy(), last[:T])
        np.testing.assert_array_equal(dm.val_y[i].numpy(), last[T:])


@pytest.mark.parametrize("stride", [1, 3])
def test_number_of_training_windows(stride: int) -> None:
    dm = make_dm(stride)
    want = sum(expected_windows(n, stride) for n in LENGTHS.values())
    assert dm.num_train_windows == want
    assert len(dm.train_x) == len(dm.train_y) == want
    # per series too: the windows start every `stride` steps from the series' start
    series, time = decode(dm.train_x)
    for i, n in enumerate(LENGTHS.values()):
        starts = time[series[:, 0] == i, 0]
        np.testing.assert_array_equal(starts, 1 + stride * np.arange(expected_windows(n, stride)))


def test_series_too_short_to_train_is_still_validated() -> None:
    dm = make_dm()
    short = list(LENGTHS).index("short")
    series, _ = decode(dm.train_x)
    assert short not in series[:, 0]
    n = LENGTHS["short"]
    val_series, val_time = decode(dm.val_x)
    assert val_series[short, 0] == short
    np.testing.assert_array_equal(val_time[short], np.arange(n - H - T + 1, n - H + 1))
    _, target_time = decode(dm.val_y)
    np.testing.assert_array_equal(target_time[short], np.arange(n - H + 1, n + 1))


def test_mase_scale_comes_from_the_training_part() -> None:
    # values rise by 1 per step, so |y_t - y_{t-m}| = m everywhere: the scale is m per series
    dm = make_dm()
    np.testing.assert_allclose(dm.val_mase_scale.numpy(), np.full(len(LENGTHS), float(M)))
    for values, insample in zip(make_series().values(), dm.val_insample, strict=True):
        np.testing.assert_array_equal(insample, values[:-H])


def test_all_series_too_short_raises_value_error() -> None:
    series = {"x": np.arange(T + 2 * H - 1, dtype=float), "y": np.arange(T + H, dtype=float)}
    with pytest.raises(ValueError, match="input_size") as err:
        SeriesDataModule(series, input_size=T, horizon=H, batch_size=4, seasonality=M)
    assert str(T + 2 * H) in str(err.value)


def test_exactly_one_training_window_at_the_minimum_length() -> None:
    series = {"x": np.arange(T + 2 * H, dtype=float) + 1}
    dm = SeriesDataModule(series, input_size=T, horizon=H, batch_size=4, seasonality=M)
    assert dm.num_train_windows == 1


def collect(loader: torch.utils.data.DataLoader) -> list[tuple[torch.Tensor, ...]]:  # type: ignore[type-arg]
    return [tuple(batch) for batch in loader]


def test_train_dataloader_yields_batches_covering_every_window_once() -> None:
    dm = make_dm(batch_size=4)
    torch.manual_seed(0)
    batches = collect(dm.train_dataloader())
    for x, y in batches[:-1]:
        assert x.shape == (4, T)
        assert y.shape == (4, H)
        assert x.dtype == y.dtype == torch.float32
    assert 1 <= len(batches[-1][0]) <= 4
    xs = torch.cat([b[0] for b in batches])
    ys = torch.cat([b[1] for b in batches])
    assert len(xs) == dm.num_train_windows
    assert torch.equal(ys[:, 0], xs[:, -1] + 1)  # pairs stay together when shuffled
    # a permutation of all windows, not in build order
    order = torch.argsort(xs[:, 0])
    assert torch.equal(xs[order], dm.train_x[torch.argsort(dm.train_x[:, 0])])
    assert not torch.equal(xs, dm.train_x)


@pytest.mark.parametrize("samples", [5, 8, 50])
def test_samples_per_epoch_bounds_windows_per_epoch(samples: int) -> None:
    dm = make_dm(batch_size=4, samples_per_epoch=samples)
    assert dm.num_train_windows < 50  # 50 asks for more than one pass
    torch.manual_seed(0)
    batches = collect(dm.train_dataloader())
    assert sum(len(x) for x, _ in batches) == samples
    assert len(batches) == -(-samples // 4)
    for x, y in batches:
        assert x.shape[1:] == (T,)
        assert y.shape[1:] == (H,)


def test_val_dataloader_yields_series_in_order_with_mase_scale() -> None:
    dm = make_dm(batch_size=2)  # validation batches are at least 1024 windows
    batches = collect(dm.val_dataloader())
    assert len(batches) == 1
    x, y, scale = batches[0]
    assert torch.equal(x, dm.val_x)
    assert torch.equal(y, dm.val_y)
    assert torch.equal(scale, dm.val_mase_scale)
    series, _ = decode(x)
    np.testing.assert_array_equal(series[:, 0], np.arange(len(LENGTHS)))
