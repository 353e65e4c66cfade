"""`stackcast evaluate` scores a model on the bundled M4 subset its run trained on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.train_args import run_stackcast, set_args

pytestmark = pytest.mark.slow

TINY_WEEKLY = {
    "data.source": "m4_weekly",
    "data.seasonality": 1,
    "model.input_size": 48,  # every Weekly series has >= 80 points: 48 + 13 fit
    "model.horizon": 13,
    "model.hidden_size": 8,
    "model.num_layers": 1,
    "data.samples_per_epoch": 256,
    "trainer.max_epochs": 1,
    "trainer.progress_bar": False,
}


def test_a_weekly_model_is_scored_on_weekly_beside_the_published_rows(tmp_path: Path) -> None:
    trained = run_stackcast(["train", *set_args(TINY_WEEKLY)], tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]

    scored = run_stackcast(["evaluate"], tmp_path)  # no --train/--test: the model's own subset
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert "data: M4 Weekly (359 series, horizon 13), seasonality m = 1" in scored.stdout
    rows = [line.split() for line in scored.stdout.splitlines()]
    naive1 = [r for r in rows if r[:1] == ["Naive1"]]
    assert naive1 == [
        ["Naive1", "9.161", "2.777", "1.000", "ours"],
        ["Naive1", "9.161", "2.777", "1.000", "published", "M4"],
    ]
    assert any(r[:1] == ["#235"] and r[-3:] == ["0.739", "published", "M4"] for r in rows)
    assert not any(r[:1] == ["#238"] for r in rows)  # no Hourly rows

    refused = run_stackcast(["evaluate", "--seasonality", "52"], tmp_path)
    assert refused.returncode != 0
    assert "--seasonality 52 disagrees" in refused.stderr

    other_m = run_stackcast(["evaluate", "--seasonality", "52", "--force"], tmp_path)
    assert other_m.returncode == 0, other_m.stderr[-3000:]
    assert "seasonality m = 52" in other_m.stdout
    assert "published M4" not in other_m.stdout  # M4 scored Weekly with m = 1: not comparable
