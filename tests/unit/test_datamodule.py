from __future__ import annotations

import numpy as np
import pytest
import torch

from stackcast.models import ModelConfig
from stackcast.training.datamodule import SeriesDataModule

pytestmark = pytest.mark.unit

T, H, M = 4, 3, 2  # input_size, horizon, seasonality
OFFSET = 1000  # series i holds OFFSET * i + (time index + 1): value -> (series, time)
# 8 points: T + H <= 8 < T + 2H, so validation only; the others also train
LENGTHS = {"a": 20, "b": 15, "short": 8, "c": 11}
MODEL = ModelConfig(input_size=T, horizon=H)


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
        model=MODEL,
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
    with pytest.raises(ValueError, match="points to train") as err:
        SeriesDataModule(series, model=MODEL, batch_size=4, seasonality=M)
    assert str(T + 2 * H) in str(err.value)


def test_exactly_one_training_window_at_the_minimum_length() -> None:
    series = {"x": np.arange(T + 2 * H, dtype=float) + 1}
    dm = SeriesDataModule(series, model=MODEL, batch_size=4, seasonality=M)
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


@pytest.mark.parametrize(("windows", "step"), [(1, None), (3, None), (4, 2), (2, 5)])
def test_no_training_target_overlaps_any_validation_target(windows: int, step: int | None) -> None:
    series = make_series({"a": 40, "b": 31})
    dm = SeriesDataModule(
        series, model=MODEL, batch_size=4, seasonality=M, val_windows=windows, val_step=step
    )
    assert len(dm.val_x) == 2 * windows
    val_targets = set(decode(dm.val_y)[0].ravel() * OFFSET + decode(dm.val_y)[1].ravel())
    train_targets = set(decode(dm.train_y)[0].ravel() * OFFSET + decode(dm.train_y)[1].ravel())
    assert not val_targets & train_targets
    # Origins are `step` apart and the latest window ends the series.
    for i, (uid, values) in enumerate(series.items()):
        origins = [o for u, o in dm.val_index if u == uid]
        assert origins[-1] == len(values) - H
        assert np.diff(origins).tolist() == [step or H] * (windows - 1)
        _, t = decode(dm.val_y[i * windows : (i + 1) * windows])
        np.testing.assert_array_equal(t[:, 0] - 1, origins)  # 1-based time = origin + 1


def test_one_long_series_is_validated_on_many_windows() -> None:
    series = {"only": np.arange(500, dtype=float) + 1}
    dm = SeriesDataModule(series, model=MODEL, batch_size=4, seasonality=M, val_windows=20)
    assert dm.val_x.shape == (20, T)
    assert int(dm.train_y.max()) <= 500 - H - 19 * H  # trained before the first target


def test_masked_model_trains_on_short_series_with_padded_windows() -> None:
    model = ModelConfig(input_size=8, horizon=2, season_length=2, padding="mask")
    series = {"long": np.arange(30, dtype=float) + 1, "short": 1000 + np.arange(7, dtype=float)}
    dm = SeriesDataModule(series, model=model, batch_size=4, seasonality=1)
    # "short" (7 points): 5 training points; windows with 2 and 3 points of context.
    short_rows = (dm.train_y >= 1000).all(dim=1)
    x = dm.train_x[short_rows]
    assert x.shape == (2, 8)
    assert torch.isnan(x).sum(dim=1).tolist() == [6, 5]
    np.testing.assert_array_equal(dm.train_y[short_rows].numpy(), [[1002, 1003], [1003, 1004]])
    # Validation of "short": the 5 points before the last 2, NaN-padded to 8.
    row = [u for u, _ in dm.val_index].index("short")
    assert torch.isnan(dm.val_x[row]).sum() == 3


def test_series_below_the_stated_minimum_are_listed() -> None:
    model = ModelConfig(input_size=8, horizon=2, season_length=3, padding="mask")
    series = {"ok": np.arange(30, dtype=float), "tiny": np.arange(4, dtype=float)}
    with pytest.raises(ValueError, match=r"fewer than the 5 points.*'tiny': 4"):
        SeriesDataModule(series, model=model, batch_size=4)


def test_history_limit_keeps_the_windows_whose_target_ends_in_the_last_points() -> None:
    series = make_series({"long": 60, "mid": 25})
    dm = SeriesDataModule(series, model=MODEL, batch_size=4, seasonality=M, history_limit=5)
    ids, t = decode(dm.train_y)
    for i, n in enumerate((60, 25)):
        ends = t[ids[:, 0] == i, -1]
        train_end = n - H  # the training part's last time index (1-based)
        assert sorted(ends.tolist()) == list(range(train_end - 4, train_end + 1))


def test_history_limit_also_bounds_padded_windows() -> None:
    model = ModelConfig(input_size=8, horizon=2, season_length=2, padding="mask")
    series = {"s": np.arange(12, dtype=float) + 1}  # 10 training points
    dm = SeriesDataModule(series, model=model, batch_size=4, seasonality=1, history_limit=3)
    assert sorted(dm.train_y[:, -1].tolist()) == [8.0, 9.0, 10.0]  # full window: 10
