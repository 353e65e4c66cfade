"""`stackcast train` interrupted (SIGTERM, SIGKILL) and continued with `--resume`.

The resumed run must end where an uninterrupted run of the same config ends: same epochs,
same learning curve, same telemetry, one registered version, in the same MLflow run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from stackcast.training.config import load_config
from stackcast.training.resume import ResumeError, find_resume_point
from stackcast.user_errors import ExitCode
from tests.conftest import in_store
from tests.e2e.train_args import set_args, small_on_file

pytestmark = pytest.mark.slow

EPOCHS = 6
MODEL = "resumed"


def _sets(csv: Path) -> list[str]:
    return set_args(
        small_on_file(csv)
        | {
            "data.samples_per_epoch": None,  # all 1356 windows: 22 batches per epoch
            "optim.batch_size": 64,
            "trainer.max_epochs": EPOCHS,
            "trainer.accelerator": "cpu",
            "telemetry.every_n_steps": 10,
            "registry.experiment": "resume",
            "registry.model_name": MODEL,
        }
    )


def _env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    return env


def _train(store: Path, csv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stackcast", "train", *_sets(csv), *args]  # args win
    return subprocess.run(
        command, cwd=store, env=_env(store), capture_output=True, text=True, timeout=300
    )


@dataclass(frozen=True)
class Outcome:
    """What a finished run recorded."""

    run_id: str
    status: str
    epochs: float
    best_val_loss: float
    train_loss: list[tuple[int, float]]  # (step, value) in step order
    map_steps: list[int]  # steps of the gradient maps in gradients/map.json
    versions: int


def _outcome(store: Path) -> Outcome:
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    run_id = run.info.run_id
    history = client.get_metric_history(run_id, "train/loss")
    maps: list[int] = []
    if "gradients.verdict" in run.data.tags:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path="gradients/map.json",
            dst_path=str(store / "downloads"),
            tracking_uri=uri,
        )
        maps = [m["step"] for m in json.loads(Path(path).read_text())["maps"]]
    return Outcome(
        run_id,
        run.info.status,
        run.data.metrics.get("epochs_trained", -1.0),
        run.data.metrics.get("best/val_loss", float("nan")),
        sorted((m.step, m.value) for m in history),
        maps,
        len(client.search_model_versions(f"name='{MODEL}'")),
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> Outcome:
    """The same config trained without interruption."""
    store = tmp_path_factory.mktemp("uninterrupted")
    done = _train(store, synthetic_csv)
    assert done.returncode == 0, done.stderr[-3000:]
    return _outcome(store)


def _interrupt(store: Path, csv: Path, signum: int) -> subprocess.CompletedProcess[str]:
    """Start training, wait until an epoch is checkpointed, then send `signum`."""
    command = [sys.executable, "-m", "stackcast", "train", *_sets(csv)]
    process = subprocess.Popen(
        command, cwd=store, env=_env(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while not list((store / "checkpoints").glob("*/last.ckpt")):
        assert process.poll() is None, process.communicate()[1].decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint after 240 s"
        time.sleep(0.05)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, out.decode(), err.decode())


def _assert_resumed_like(resumed: subprocess.CompletedProcess[str], reference: Outcome) -> None:
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    started = re.search(r"resuming run (\w+) after epoch (\d+) of 6", resumed.stdout)
    assert started, resumed.stdout
    assert int(started.group(2)) >= 1  # it continued; it did not start over
    assert f"registered: {MODEL} version 1" in resumed.stdout


def _assert_same_run_as(outcome: Outcome, reference: Outcome) -> None:
    assert outcome.status == "FINISHED"
    assert outcome.versions == 1
    assert outcome.epochs == reference.epochs == EPOCHS
    # One point per epoch, none twice, and the same curve: the resumed epochs drew the same
    # batches as the uninterrupted run's (the random state is in the checkpoint).
    assert [step for step, _ in outcome.train_loss] == [step for step, _ in reference.train_loss]
    assert [v for _, v in outcome.train_loss] == pytest.approx(
        [v for _, v in reference.train_loss], rel=1e-5
    )
    assert outcome.best_val_loss == pytest.approx(reference.best_val_loss, rel=1e-5)
    # The gradient telemetry spans the whole run: the maps before the interruption came back
    # from the checkpoint, the interrupted epoch's were recorded once.
    assert outcome.map_steps == reference.map_steps and outcome.map_steps


def test_sigterm_ends_the_run_killed_and_resume_finishes_it(
    reference: Outcome, synthetic_csv: Path, tmp_path: Path
) -> None:
    stopped = _interrupt(tmp_path, synthetic_csv, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    interrupted = _outcome(tmp_path)
    assert interrupted.status == "KILLED"
    assert interrupted.versions == 0  # nothing registered
    assert f"stackcast train --resume {interrupted.run_id}" in stopped.stderr
    assert "run_id:" not in stopped.stdout

    # A resume must use the run's config: a differing --set is refused, the run left alone.
    refused = _train(tmp_path, synthetic_csv, "--resume", "--set", "trainer.max_epochs=7")
    assert refused.returncode == ExitCode.RESUME_REFUSED
    assert "trainer.max_epochs: the run has 6, the command 7" in refused.stderr
    assert _outcome(tmp_path).status == "KILLED"

    resumed = _train(tmp_path, synthetic_csv, "--resume")  # the latest interrupted run
    _assert_resumed_like(resumed, reference)
    assert f"run_id: {interrupted.run_id}" in resumed.stdout
    _assert_same_run_as(_outcome(tmp_path), reference)


def test_sigkill_leaves_the_run_running_and_resume_finishes_it(
    reference: Outcome, synthetic_csv: Path, tmp_path: Path
) -> None:
    killed = _interrupt(tmp_path, synthetic_csv, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    interrupted = _outcome(tmp_path)
    assert interrupted.status == "RUNNING"  # nothing ran to say otherwise
    assert interrupted.versions == 0

    resumed = _train(tmp_path, synthetic_csv, "--resume", interrupted.run_id)
    _assert_resumed_like(resumed, reference)
    _assert_same_run_as(_outcome(tmp_path), reference)

    with in_store(tmp_path), pytest.raises(ResumeError, match="is FINISHED: nothing to resume"):
        find_resume_point(interrupted.run_id, load_config())
