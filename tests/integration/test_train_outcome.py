"""What `train` reports about its outcome: the epoch the registered weights come from, the
torch threads it used, and whether the new version took the alias."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from stackcast.training.train import train
from tests.conftest import TinyConfig
from tests.integration.test_resume_state import WorseAt

pytestmark = pytest.mark.slow


def test_the_registered_weights_come_from_the_best_epoch_and_say_which(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    config = tiny_config(trainer={"max_epochs": 3})
    result = train(config, extra_callbacks=[WorseAt(epoch=2)])  # the last epoch is worse
    assert result is not None and result.epochs == 3
    client = MlflowClient()
    val_loss = [m.value for m in client.get_metric_history(result.run_id, "val/loss")]
    best = val_loss.index(min(val_loss)) + 1  # 1-based
    assert best < 3
    assert result.best_epoch == best
    run = client.get_run(result.run_id)
    assert run.data.metrics["best_epoch"] == best
    assert run.data.metrics["best/val_loss"] == pytest.approx(min(val_loss), rel=1e-6)
    version = client.get_model_version(config.registry.model_name, "1")
    assert version.tags["best_epoch"] == str(best)


def test_the_run_logs_the_torch_threads_it_trained_with(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    result = train(tiny_config(trainer={"max_epochs": 1, "threads": 1}))
    assert result is not None
    params = MlflowClient().get_run(result.run_id).data.params
    assert (params["trainer.threads"], params["trainer.threads_resolved"]) == ("1", "1")
    assert result.threads.describe() == "torch threads: 1 (trainer.threads)"

    auto = train(tiny_config(trainer={"max_epochs": 1}))
    assert auto is not None and auto.threads.threads >= 1
    params = MlflowClient().get_run(auto.run_id).data.params
    assert params["trainer.threads"] == "auto"
    assert params["trainer.threads_resolved"] == str(auto.threads.threads)


def test_a_run_at_another_horizon_is_registered_but_leaves_the_alias(
    mlflow_store: str, tiny_config: TinyConfig
) -> None:
    first = train(tiny_config(trainer={"max_epochs": 1}))
    other = train(tiny_config(model={"horizon": 6}, trainer={"max_epochs": 1}))
    assert first is not None and other is not None
    reg = other.registration
    assert (reg.version, reg.alias_moved, reg.previous_champion) == (2, False, 1)
    assert "validated at another horizon: horizon 6 != 12" in reg.reason

    promoted = train(tiny_config(model={"horizon": 6}, trainer={"max_epochs": 1}), promote=True)
    assert promoted is not None and promoted.registration.alias_moved
    assert promoted.registration.reason.startswith("promoted, although validated at another")
    champion = MlflowClient().get_model_version_by_alias("tiny", "champion")
    assert int(champion.version) == 3
    assert mlflow.get_run(champion.run_id).data.params["model.horizon"] == "6"
