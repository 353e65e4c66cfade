"""M4's interval metrics: hand-computed cases, and the published Naive rows reproduced."""

from __future__ import annotations

import numpy as np
import pytest

from stackcast.training.baselines import naive1_interval
from stackcast.training.interval_metrics import acd, coverage, msis
from stackcast.training.m4 import M4_DATASETS, load_m4

pytestmark = pytest.mark.unit

Y = [[5.0, 0.0, 10.0]]
LOWER = [[4.0, 1.0, 6.0]]
UPPER = [[6.0, 3.0, 8.0]]


def test_msis_by_hand() -> None:
    # widths 2 each; step 2 is 1 below L: + 40 x 1; step 3 is 2 above U: + 40 x 2 (2 / 0.05 = 40)
    # -> mean (2 + 42 + 82) / 3 = 42, over the in-sample scale mean |x_t - x_(t-1)| = 1.
    assert msis([[1.0, 2.0, 3.0, 4.0]], Y, LOWER, UPPER, m=1) == pytest.approx([42.0])
    # the same interval, scale 2: half; m = 2 reads x_t - x_(t-2)
    assert msis([[0.0, 2.0, 0.0, 2.0]], Y, LOWER, UPPER, m=1) == pytest.approx([21.0])
    assert msis([[0.0, 2.0, 4.0, 6.0]], Y, LOWER, UPPER, m=2) == pytest.approx([10.5])


def test_msis_of_a_covering_interval_is_its_scaled_width() -> None:
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = msis([[0.0, 1.0], [0.0, 2.0]], y, y - 1, y + 2, m=1)
    assert got == pytest.approx([3.0, 1.5])


def test_a_wider_alpha_penalizes_misses_less() -> None:
    strict = msis([[1.0, 2.0, 3.0, 4.0]], Y, LOWER, UPPER, m=1, alpha=0.05)
    loose = msis([[1.0, 2.0, 3.0, 4.0]], Y, LOWER, UPPER, m=1, alpha=0.2)
    assert loose == pytest.approx([(2 + 12 + 22) / 3])  # 2 / 0.2 = 10
    assert loose < strict


def test_coverage_and_acd_by_hand() -> None:
    assert coverage(Y, LOWER, UPPER) == pytest.approx(1 / 3)
    assert acd(Y, LOWER, UPPER) == pytest.approx(0.95 - 1 / 3)
    # bounds count as inside
    assert coverage([[1.0, 2.0]], [[1.0, 0.0]], [[3.0, 2.0]]) == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: msis([[1.0, 2.0]], [[1.0]], [[2.0]], [[1.0]], m=1), "lower bound lies above"),
        (lambda: msis([[1.0, 2.0]], [[1.0, 2.0]], [[0.0]], [[3.0]], m=1), "equal shapes"),
        (lambda: msis([[1.0, 2.0]], Y, LOWER, UPPER, m=1, alpha=1.0), "alpha"),
        (lambda: msis([[1.0, 2.0]] * 2, Y, LOWER, UPPER, m=1), "2 in-sample series for 1"),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_naive1_interval_by_hand() -> None:
    # differences 1, -1, 1: sigma 1; step k: 5 +- 1.96 sqrt(k)
    lower, upper = naive1_interval([[4.0, 5.0, 4.0, 5.0]], 2)
    z = 1.959964
    np.testing.assert_allclose(lower, [[5 - z, 5 - z * np.sqrt(2)]], rtol=1e-6)
    np.testing.assert_allclose(upper, [[5 + z, 5 + z * np.sqrt(2)]], rtol=1e-6)


@pytest.mark.parametrize(
    ("subset", "published_msis", "published_acd"),
    [("hourly", 71.245, 0.011), ("weekly", 26.358, 0.001)],  # SOURCE.md, the Naive row
)
def test_the_published_naive_interval_row_is_reproduced(
    subset: str, published_msis: float, published_acd: float
) -> None:
    split = load_m4(subset)  # type: ignore[arg-type]
    test = np.stack(split.test)
    lower, upper = naive1_interval(split.train, test.shape[1])
    m = M4_DATASETS[subset].seasonality  # type: ignore[index]
    assert round(float(np.mean(msis(split.train, test, lower, upper, m))), 3) == published_msis
    assert round(acd(test, lower, upper), 3) == published_acd
