"""The `stackcast` CLI as a user runs it: embedded MLflow store in the working directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.train_args import run_stackcast, set_args

pytestmark = pytest.mark.slow

TINY_M4 = {
    "model.input_size": 48,
    "model.hidden_size": 8,
    "model.num_layers": 1,
    "data.samples_per_epoch": 256,
    "trainer.max_epochs": 1,
    "trainer.progress_bar": False,
}


def test_train_then_evaluate_on_bundled_m4(tmp_path: Path) -> None:
    # The progress bar is asked for, but stdout is a pipe: one line per epoch, no bar frames.
    trained = run_stackcast(
        ["train", *set_args({**TINY_M4, "trainer.progress_bar": True})], tmp_path
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert re.search(r"^epoch 1/1  train/loss \d", trained.stdout, re.M)
    assert "━" not in trained.stdout + trained.stderr
    assert re.search(r"^run_id: [0-9a-f]{32}$", trained.stdout, re.M)
    assert "registered: stackcast version 1" in trained.stdout
    assert "(epochs trained: 1; registered weights from epoch 1, the best)" in trained.stdout
    assert re.search(
        r"^torch threads: \d+ \(auto: \d+ cores / \d+ training process", trained.stdout, re.M
    )
    assert "alias 'champion' moved to version 1 (new)" in trained.stdout
    assert (tmp_path / "mlflow.db").exists()  # the embedded default store

    scored = run_stackcast(["evaluate", "--model", "models:/stackcast@champion"], tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    rows = {line.split()[0]: line for line in scored.stdout.splitlines() if line.strip()}
    assert {"stackcast", "Naive1", "sNaive", "Naive2", "SES", "Theta"} <= set(rows)
    ours = rows["stackcast"].split()
    assert ours[-1] == "ours" and all(float(v) > 0 for v in ours[1:4])
    assert "published M4" in scored.stdout
    assert "Downloading artifacts" not in scored.stdout + scored.stderr


def test_unknown_config_key_fails_with_its_name(tmp_path: Path) -> None:
    result = run_stackcast(["train", "--set", "model.hiden_size=8"], tmp_path)
    assert result.returncode != 0
    assert "hiden_size" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing was started


def test_promote_moves_the_alias_to_a_run_validated_at_another_horizon(tmp_path: Path) -> None:
    first = run_stackcast(["train", *set_args(TINY_M4)], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    other = set_args(TINY_M4 | {"model.horizon": 24})
    stayed = run_stackcast(["train", *other], tmp_path)
    assert stayed.returncode == 0, stayed.stderr[-3000:]
    assert "registered: stackcast version 2" in stayed.stdout
    assert (
        "alias 'champion' stays on version 1 (validated at another horizon: horizon 24 != 48; "
        in stayed.stdout
    )
    assert "--promote moves it anyway)" in stayed.stdout

    promoted = run_stackcast(["train", *other, "--promote"], tmp_path)
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    assert (
        "alias 'champion' moved to version 3 from version 1 (promoted, although validated at "
        "another horizon: horizon 24 != 48" in promoted.stdout
    )
