"""`stackcast train --data FILE --horizon H`: a user's file, no config, choices from the data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e.train_args import run_stackcast

pytestmark = pytest.mark.slow


def daily_sales(path: Path, seed: int = 0) -> Path:
    """Daily series with a weekly cycle and a steady trend: seasonal naive lags the trend."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate([120, 200, 260, 300, 160, 240]):
        t = np.arange(n)
        level = rng.uniform(80, 400)
        weekly = 1 + 0.25 * np.sin(2 * np.pi * t / 7 + i)
        y = level * weekly * (1 + 0.01 * t) + rng.normal(0, 0.01 * level, n)
        ds = pd.date_range("2023-03-06", periods=n, freq="D")
        frames.append(pd.DataFrame({"unique_id": f"shop{i}", "ds": ds, "y": y.round(2)}))
    pd.concat(frames).to_csv(path, index=False)
    return path


def _validation(stdout: str) -> dict[str, tuple[float, float]]:
    rows = re.findall(r"^  (\S+)\s+([\d.]+)\s+([\d.]+)$", stdout, re.M)
    return {name: (float(s), float(m)) for name, s, m in rows}


def test_train_on_a_daily_file_chooses_from_the_data_and_beats_seasonal_naive(
    tmp_path: Path,
) -> None:
    csv = daily_sales(tmp_path / "daily_sales.csv")
    small = ["--set", "model.hidden_size=32", "--set", "trainer.max_epochs=12"]
    quiet = ["--set", "trainer.progress_bar=false", "--set", "data.samples_per_epoch=4096"]
    done = run_stackcast(["train", "--data", str(csv), "--horizon", "14", *small, *quiet], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "auto: data.freq = daily" in out
    assert "auto: model.season_length = 7" in out  # the weekly cycle beats the last value
    assert "auto: data.seasonality = 1" in out  # M4's convention for daily
    assert "auto: model.input_size = 56" in out and "auto: model.patch_size = 7" in out
    # 6 series, 64 windows wanted: 11 origins each, fewer if the shortest series can't spare them
    windows = int(re.search(r"auto: data.val_windows = (\d+)", out)[1])  # type: ignore[index]
    assert 1 < windows <= 11
    scores = _validation(out)
    assert set(scores) == {"stackcast", "Naive1", "sNaive", "Naive2"}
    assert scores["stackcast"][1] < scores["sNaive"][1], out  # MASE below seasonal naive
    assert scores["stackcast"][0] < scores["sNaive"][0], out  # and sMAPE
    assert "registered: stackcast version 1" in out
    # No progress bar: one line per epoch instead, as many as epochs trained.
    epochs = re.findall(r"^epoch (\d+)/12  train/loss [\d.]+  val/loss [\d.]+  val/owa ", out, re.M)
    trained = re.search(r"epochs trained: (\d+)", out)
    assert trained and [int(e) for e in epochs] == list(range(1, int(trained[1]) + 1)), out


def test_integer_ds_without_a_frequency_asks_for_one(tmp_path: Path) -> None:
    frame = pd.DataFrame({"unique_id": "a", "ds": np.arange(200), "y": np.arange(200.0)})
    frame.to_csv(tmp_path / "steps.csv", index=False)
    done = run_stackcast(["train", "--data", "steps.csv"], tmp_path)
    assert done.returncode != 0
    assert "data.freq" in done.stderr and "model.season_length" in done.stderr


def test_evaluate_reads_the_seasonality_from_the_models_contract(tmp_path: Path) -> None:
    frame = pd.read_csv(daily_sales(tmp_path / "all.csv"))
    last = frame.groupby("unique_id").cumcount(ascending=False) < 14  # each series' last 14
    frame[~last].to_csv(tmp_path / "daily_train.csv", index=False)
    frame[last].to_csv(tmp_path / "daily_test.csv", index=False)
    quick = ["--set", "model.hidden_size=8", "--set", "trainer.max_epochs=1"]
    quiet = ["--set", "trainer.progress_bar=false", "--set", "data.samples_per_epoch=512"]
    seven = ["--set", "data.seasonality=7"]  # MASE's m: the weekly cycle, not M4's daily m = 1
    args = ["train", "--data", "daily_train.csv", "--horizon", "14", *quick, *quiet, *seven]
    trained = run_stackcast(args, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]

    files = ["--train", "daily_train.csv", "--test", "daily_test.csv"]
    scored = run_stackcast(["evaluate", *files], tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert "data: daily_train.csv / daily_test.csv (6 series), seasonality m = 7" in scored.stdout

    refused = run_stackcast(["evaluate", *files, "--seasonality", "24"], tmp_path)
    assert refused.returncode != 0
    assert "m = 7, and --seasonality 24 disagrees" in refused.stderr
    assert "--force" in refused.stderr

    forced = run_stackcast(["evaluate", *files, "--seasonality", "24", "--force"], tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "seasonality m = 24" in forced.stdout
