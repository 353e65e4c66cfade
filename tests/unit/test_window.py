"""The one window policy: crop, seasonal pad or NaN-mask pad, and refusal of short histories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.models.window import ShortHistoryError, min_history, model_input, model_inputs


def _config(**kw: object) -> ModelConfig:
    base: dict[str, object] = {"input_size": 16, "horizon": 4, "season_length": 4}
    return ModelConfig.model_validate({**base, **kw})


def test_long_history_uses_its_last_window() -> None:
    history = np.arange(100, dtype=np.float32)
    config = _config(input_size=48, season_length=24)
    np.testing.assert_array_equal(model_input(history, config), history[-48:])


def test_short_history_is_padded_with_its_own_season_in_phase() -> None:
    season = np.array([10.0, 20.0, 30.0, 40.0], dtype=np.float32)
    history = np.tile(season, 3)[1:]  # 11 points starting at phase 1
    window = model_input(history, _config())
    assert window.shape == (16,)
    np.testing.assert_array_equal(window[-11:], history)
    # A truly periodic series padded in phase is the same periodic series.
    np.testing.assert_array_equal(window, np.tile(season, 4)[-16:])


def test_without_seasonality_the_first_value_repeats() -> None:
    window = model_input([5.0, 6.0, 7.0], _config(input_size=6, season_length=None))
    np.testing.assert_array_equal(window, [5, 5, 5, 5, 6, 7])


def test_mask_padding_marks_the_missing_points_as_nan() -> None:
    window = model_input([5.0, 6.0, 7.0, 8.0, 9.0], _config(input_size=8, padding="mask"))
    assert np.isnan(window[:3]).all()
    np.testing.assert_array_equal(window[3:], [5, 6, 7, 8, 9])


@pytest.mark.parametrize("padding", ["season", "mask"])
def test_history_shorter_than_a_season_is_refused(padding: str) -> None:
    config = _config(input_size=8, padding=padding)
    assert min_history(config) == 4
    with pytest.raises(ShortHistoryError, match="shorter than the 4 the model needs"):
        model_input([1.0, 2.0, 3.0], config)


def test_windows_of_many_histories_stack() -> None:
    config = _config(input_size=48, season_length=24)
    windows = model_inputs([list(range(60)), list(range(30))], config)
    assert windows.shape == (2, 48) and windows.dtype == np.float32


def test_masked_model_ignores_what_the_padding_would_have_been() -> None:
    """A padded window forecasts the same whatever values stand behind the mask."""
    torch.manual_seed(0)
    config = _config(input_size=16, patch_size=4, padding="mask", hidden_size=8)
    model = StackedRNNForecaster(config).eval()
    short = np.random.default_rng(0).uniform(50, 60, 9).astype(np.float32)
    window = torch.from_numpy(model_input(short, config))[None]  # 7 NaN, then 9 values
    with torch.inference_mode():
        out = model(window)
        loc, scale = model.window_stats(window)
    assert torch.isfinite(out).all()
    # Statistics come from the 9 observed points only.
    torch.testing.assert_close(scale[0, 0], torch.tensor(short.mean()), rtol=1e-5, atol=1e-4)
    assert loc.item() == 0.0


def test_masked_model_scales_like_the_unmasked_one_on_full_windows() -> None:
    full = torch.from_numpy(np.random.default_rng(1).uniform(1, 9, (3, 16)).astype(np.float32))
    for scaling in ("mean_abs", "standard", "none"):
        masked = StackedRNNForecaster(_config(padding="mask", scaling=scaling))
        plain = StackedRNNForecaster(_config(scaling=scaling))
        for got, want in zip(masked.window_stats(full), plain.window_stats(full), strict=True):
            torch.testing.assert_close(got, want)


def test_the_mask_is_an_input_channel() -> None:
    masked = StackedRNNForecaster(_config(patch_size=4, padding="mask", cell="gru"))
    plain = StackedRNNForecaster(_config(patch_size=4, cell="gru"))
    assert masked.layers[0].input_size == 8 and plain.layers[0].input_size == 4
