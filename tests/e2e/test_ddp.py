"""`stackcast train` with DDP on two CPU processes (gloo): one run, one version, two shards."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.train_args import TRAIN, set_args, small_on_file

pytestmark = pytest.mark.slow

HOOK = Path(__file__).with_name("record_rows")  # sitecustomize: each rank logs its batches
WINDOWS = 12 * (160 - 12 - 36 + 1)  # synthetic_csv: 12 series; 113 training windows each
BATCH, EPOCHS = 64, 2


def test_two_processes_train_disjoint_shards_into_one_run(
    synthetic_csv: Path, tmp_path: Path
) -> None:
    rows_dir = tmp_path / "rows"
    rows_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env |= {
        "MLFLOW_TRACKING_URI": uri,
        "PYTHONPATH": os.pathsep.join([str(HOOK), env.get("PYTHONPATH", "")]),
        "STACKCAST_TEST_ROWS": str(rows_dir),
    }
    command = TRAIN + set_args(
        small_on_file(synthetic_csv)
        | {
            "data.samples_per_epoch": None,
            "data.val_windows": 1,  # explicit: `auto` would take 3 origins per series here
            "optim.batch_size": BATCH,
            "trainer.max_epochs": EPOCHS,
            "trainer.accelerator": "cpu",
            "trainer.strategy": "ddp",
            "trainer.devices": 2,
            "telemetry.every_n_steps": 5,
            "registry.experiment": "ddp",
            "registry.model_name": "ddp",
        }
    )
    trained = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "registered: ddp version 1" in trained.stdout
    assert trained.stdout.count("run_id:") == 1  # rank 1 reports nothing
    # trainer.threads=auto: the two ranks share the cores (Lightning's launcher keeps the count).
    plan = re.search(r"torch threads: (\d+) \(auto: (\d+) cores / (\d+) training", trained.stdout)
    assert plan, trained.stdout
    threads, cores, processes = (int(n) for n in plan.groups())
    assert processes >= 2 and threads == max(1, cores // processes)
    ranks = [int((rows_dir / f"rank{rank}.threads").read_text()) for rank in (0, 1)]
    assert ranks[0] == threads and 1 <= ranks[1] <= max(1, cores // 2)

    # Rank 0 alone tracked: one run, one version, one point per epoch.
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ddp").experiment_id])
    assert run.info.status == "FINISHED"
    assert len(client.search_model_versions("name='ddp'")) == 1
    assert (run.data.params["trainer.strategy"], run.data.params["trainer.devices"]) == ("ddp", "2")
    for key in ("train/loss", "grad/norm_pre_clip", "grad/clipped", "whh/l0/spectral_radius"):
        assert len(client.get_metric_history(run.info.run_id, key)) == EPOCHS, key
    val = client.get_metric_history(run.info.run_id, "val/loss")
    assert len(val) == EPOCHS + 1  # + the best checkpoint's scoring
    assert run.data.metrics["best/val_loss"] == pytest.approx(min(m.value for m in val))
    assert math.isfinite(run.data.metrics["best/val_owa"])
    # The telemetry ran on rank 0: a map every 5 of its 11 steps per epoch, and a verdict.
    maps = client.get_metric_history(run.info.run_id, "grad_flow/top_decay_ratio")
    assert sorted(m.step for m in maps) == [0, 5, 10, 15, 20]
    assert run.data.tags["gradients.verdict"] in {"healthy", "vanishing", "exploding"}
    document = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="gradients/map.json", tracking_uri=uri
    )
    assert len(json.loads(Path(document).read_text())["maps"]) == 5

    # Both ranks trained, on different windows: every epoch they split the windows exactly.
    lines = {rank: (rows_dir / f"rank{rank}.jsonl").read_text().splitlines() for rank in (0, 1)}
    batches = {rank: [json.loads(line) for line in lines[rank]] for rank in (0, 1)}
    per_epoch = math.ceil(math.ceil(WINDOWS / BATCH) / 2)  # 11 steps per rank and epoch
    assert len(batches[0]) == len(batches[1]) == EPOCHS * per_epoch
    for epoch in range(EPOCHS):
        part = slice(epoch * per_epoch, (epoch + 1) * per_epoch)
        rows = {rank: [r for batch in batches[rank][part] for r in batch] for rank in (0, 1)}
        assert not set(rows[0]) & set(rows[1])
        assert sorted(rows[0] + rows[1]) == list(range(WINDOWS))
