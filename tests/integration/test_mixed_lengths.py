"""Series of 30 and 900 points train one model, and the service forecasts both."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from stackcast.models.window import model_inputs
from stackcast.training.auto import resolve_from_data
from stackcast.training.config import AUTO_CONFIG, load_tree
from stackcast.training.train import train
from tests.conftest import ServedStore, in_store
from tests.service_helpers import API_KEY, in_process, wait_healthy

pytestmark = pytest.mark.slow

LENGTHS = {"new_shop": 30, "old_shop": 900, "young_shop": 45, "big_shop": 700}


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for i, (uid, n) in enumerate(LENGTHS.items()):
        t = np.arange(n)
        y = (100 + 40 * i) * (1 + 0.3 * np.sin(2 * np.pi * t / 7)) + rng.normal(0, 2, n)
        ds = pd.date_range(end="2024-06-30", periods=n, freq="D")
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    return pd.concat(frames)


def test_short_and_long_series_train_together_and_are_both_served(tmp_path: Path) -> None:
    frame = _frame()
    csv = tmp_path / "shops.csv"
    frame.to_csv(csv, index=False)
    overrides = [
        f"data.path={csv}",
        "model.horizon=7",
        "model.hidden_size=16",
        "data.samples_per_epoch=2048",
        "trainer.max_epochs=2",
        "trainer.progress_bar=false",
        "trainer.accelerator=cpu",
        "registry.model_name=mixed",
    ]
    config, choices = resolve_from_data(load_tree(AUTO_CONFIG, overrides))
    assert config.model.padding == "mask"  # 30 points < a full 56-point window + validation
    assert config.model.input_size == 56 and config.model.season_length == 7
    assert any(c.key == "model.padding" and "NaN-padded" in c.reason for c in choices)
    directory = tmp_path / "store"
    directory.mkdir()
    with in_store(directory) as uri:
        result = train(config, choices=choices)
        assert result is not None
        run = mlflow.get_run(result.run_id)
    assert run.data.params["auto.model.padding"].startswith("2 series are shorter")
    assert "Chosen from the data" in run.data.tags["mlflow.note.content"]
    store = ServedStore(directory, uri, "mixed", config.model)

    histories = {uid: g["y"].to_numpy() for uid, g in frame.groupby("unique_id", sort=False)}
    body = {"series": [{"id": uid, "history": h.tolist()} for uid, h in histories.items()]}
    with in_process(store, tmp_path / "runtime", api_key=API_KEY) as client:
        wait_healthy(client)
        answer = client.post("/predict", json=body, headers={"X-API-Key": API_KEY})
    assert answer.status_code == 200, answer.text
    served = {f["id"]: f["mean"] for f in answer.json()["forecasts"]}
    assert set(served) == set(LENGTHS)
    with in_store(directory):
        pyfunc = mlflow.pyfunc.load_model(store.uri)
        windows = model_inputs(list(histories.values()), config.model)
        offline = np.asarray(pyfunc.predict(windows))
    for row, uid in enumerate(histories):
        assert len(served[uid]) == 7 and np.isfinite(served[uid]).all()
        np.testing.assert_allclose(served[uid], offline[row], rtol=1e-5)
    assert np.isnan(windows[0]).sum() == 56 - 30  # the 30-point series went in NaN-padded
