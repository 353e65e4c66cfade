from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, NoReturn

import pytest
import torch
from pydantic import ValidationError

from stackcast.models.config import ModelConfig
from stackcast.models.data_contract import DataContract
from stackcast.models.forecaster import StackedRNNForecaster
from stackcast.models.serialization import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_data_contract,
    load_model_dir,
    save_model_dir,
)

pytestmark = pytest.mark.unit

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def make(cell: str = "lstm", **overrides: Any) -> StackedRNNForecaster:
    options: dict[str, Any] = {
        "cell": cell,
        "input_size": 12,
        "horizon": 5,
        "hidden_size": 8,
        "num_layers": 2,
        "dropout": 0.3,
        "residual": True,
    }
    options.update(overrides)
    torch.manual_seed(0)
    return StackedRNNForecaster(ModelConfig(**options))


def windows() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.rand(4, 12, generator=g) * 10 + 1


@pytest.mark.parametrize("cell", CELLS)
def test_round_trip_gives_identical_outputs(cell: str, tmp_path: Path) -> None:
    model = make(cell).eval()
    save_model_dir(model, tmp_path / "m")
    torch.manual_seed(123)  # a fresh init would differ: outputs must come from the saved weights
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.config == model.config
    assert not loaded.training  # loaded ready to predict: dropout off
    x = windows()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_directory_holds_exactly_weights_and_config(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "model"  # created, parents included
    returned = save_model_dir(make(), target)
    assert returned == target
    assert sorted(p.name for p in target.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE])
    assert WEIGHTS_FILE == "weights.safetensors"
    assert CONFIG_FILE == "model_config.json"
    config = json.loads((target / CONFIG_FILE).read_text())
    assert config["cell"] == "lstm"
    assert config["hidden_size"] == 8


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = make("gru").eval()
    save_model_dir(model, tmp_path / "m")

    def forbidden(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(AssertionError, match="unpickling"):  # the patch is live
        torch.load(tmp_path / "m" / WEIGHTS_FILE)

    loaded = load_model_dir(tmp_path / "m")
    x = windows()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_tampered_config_with_unknown_key_fails_loudly(tmp_path: Path) -> None:
    save_model_dir(make(), tmp_path / "m")
    path = tmp_path / "m" / CONFIG_FILE
    config = json.loads(path.read_text())
    config["trust_remote_code"] = True
    path.write_text(json.dumps(config))
    with pytest.raises(ValidationError, match="trust_remote_code"):
        load_model_dir(tmp_path / "m")


def test_config_that_does_not_match_weights_fails_loudly(tmp_path: Path) -> None:
    save_model_dir(make(), tmp_path / "m")
    path = tmp_path / "m" / CONFIG_FILE
    config = json.loads(path.read_text())
    config["hidden_size"] = 16
    path.write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_model_dir(tmp_path / "m")


def test_missing_weights_file_fails(tmp_path: Path) -> None:
    save_model_dir(make(), tmp_path / "m")
    (tmp_path / "m" / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError):
        load_model_dir(tmp_path / "m")


def test_the_data_contract_travels_beside_the_weights(tmp_path: Path) -> None:
    contract = DataContract(source="file", frequency="daily", freq_alias="D", seasonality=7)
    save_model_dir(make(), tmp_path / "with", contract)
    assert load_data_contract(tmp_path / "with") == contract
    save_model_dir(make(), tmp_path / "without")  # as versions logged before the contract
    assert load_data_contract(tmp_path / "without") is None
