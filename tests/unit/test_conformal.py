"""Split-conformal half-widths: the rank rule by hand, and coverage on data with known noise."""

from __future__ import annotations

import numpy as np
import pytest

from stackcast.training.conformal import conformal_halfwidths

pytestmark = pytest.mark.unit


def test_the_rank_rule_by_hand() -> None:
    errors = np.arange(1.0, 20.0)[:, None]  # n = 19 windows, one step: errors 1 .. 19
    # level 0.5: ceil(20 x 0.5) = 10th smallest = 10; level 0.9: ceil(18) = 18th = 18
    np.testing.assert_array_equal(conformal_halfwidths(errors, [0.5, 0.9]), [[10.0], [18.0]])


def test_each_step_gets_its_own_width() -> None:
    errors = np.column_stack([np.arange(1.0, 20.0), 10 * np.arange(1.0, 20.0)])
    np.testing.assert_array_equal(conformal_halfwidths(errors, [0.5]), [[10.0, 100.0]])


@pytest.mark.parametrize("level", [0.8, 0.95])
def test_coverage_on_known_noise_is_nominal(level: float) -> None:
    # Errors grow with the step (sigma 1 .. 4); 2,000 calibration windows, 50,000 new ones.
    rng = np.random.default_rng(0)
    sigma = np.linspace(1, 4, 6)
    calibration = np.abs(rng.normal(0, sigma, (2000, 6)))
    fresh = rng.normal(0, sigma, (50_000, 6))
    width = conformal_halfwidths(calibration, [level])[0]
    covered = (np.abs(fresh) <= width).mean(axis=0)  # per step
    assert np.all(np.abs(covered - level) < 0.015), covered  # tolerance: n = 2000's sampling


def test_too_few_windows_for_a_level_is_refused() -> None:
    with pytest.raises(ValueError, match=r"too few for level 0\.95: it needs at least 19"):
        conformal_halfwidths(np.ones((10, 3)), [0.95])
    conformal_halfwidths(np.ones((19, 3)), [0.95])  # 19 are enough
    conformal_halfwidths(np.ones((4, 3)), [0.8])


@pytest.mark.parametrize(
    ("errors", "levels", "message"),
    [
        (np.ones(5), [0.8], "shape"),
        (-np.ones((5, 2)), [0.5], "finite absolute errors"),
        (np.ones((5, 2)), [1.0], r"in \(0, 1\)"),
    ],
)
def test_bad_input_is_refused(errors: np.ndarray, levels: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        conformal_halfwidths(errors, levels)
