from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from stackcast.models.config import ModelConfig

pytestmark = pytest.mark.unit


def test_defaults_are_valid() -> None:
    config = ModelConfig()
    assert config.cell == "lstm"
    assert config.num_layers >= 1


def test_unknown_key_is_rejected_and_named() -> None:
    with pytest.raises(ValidationError, match="hidden") as err:
        ModelConfig(hidden=3)  # type: ignore[call-arg]
    assert err.value.errors()[0]["loc"] == ("hidden",)
    assert err.value.errors()[0]["type"] == "extra_forbidden"


def test_unknown_key_in_json_is_rejected() -> None:
    text = json.dumps({**ModelConfig().model_dump(), "layers": 3})
    with pytest.raises(ValidationError, match="layers"):
        ModelConfig.model_validate_json(text)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cell": "gru", "forget_bias": 1.0}, "forget_bias"),
        ({"cell": "rnn_tanh", "forget_bias": 0.0}, "forget_bias"),
        ({"cell": "lstm", "init": "identity"}, "init"),
        ({"cell": "gru", "init": "identity"}, "init"),
        ({"num_layers": 1, "dropout": 0.2}, "dropout"),
        ({"num_layers": 0}, "num_layers"),
        ({"cell": "transformer"}, "cell"),
        ({"init": "kaiming"}, "init"),
        ({"scaling": "minmax"}, "scaling"),
        ({"dropout": 1.0, "num_layers": 2}, "dropout"),
        ({"input_size": 1}, "input_size"),
        ({"horizon": 0}, "horizon"),
        ({"hidden_size": 0}, "hidden_size"),
    ],
)
def test_invalid_combination_raises_validation_error_naming_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        ModelConfig(**options)
    # named by the error itself (its location or message), not just echoed in the input
    errors = err.value.errors()
    assert len(errors) == 1
    assert field in errors[0]["loc"] or field in errors[0]["msg"]


def test_unknown_cell_lists_the_allowed_cells() -> None:
    with pytest.raises(ValidationError) as err:
        ModelConfig(cell="transformer")  # type: ignore[arg-type]
    message = str(err.value)
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        assert cell in message


@pytest.mark.parametrize(
    "options",
    [
        {"cell": "lstm", "forget_bias": 1.0},
        {"cell": "rnn_relu", "init": "identity"},
        {"cell": "rnn_tanh", "init": "identity"},
        {"num_layers": 2, "dropout": 0.3},
    ],
)
def test_valid_cell_specific_options_are_accepted(options: dict[str, Any]) -> None:
    config = ModelConfig(**options)
    for key, value in options.items():
        assert getattr(config, key) == value


def test_config_is_frozen() -> None:
    config = ModelConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.hidden_size = 7  # type: ignore[misc]
    assert config.hidden_size == ModelConfig().hidden_size


def test_json_round_trip_is_equal() -> None:
    config = ModelConfig(
        cell="lstm",
        input_size=24,
        horizon=6,
        hidden_size=17,
        num_layers=3,
        dropout=0.25,
        residual=True,
        init="orthogonal",
        forget_bias=1.5,
        scaling="standard",
    )
    again = ModelConfig.model_validate_json(config.model_dump_json())
    assert again == config
    assert again != config.model_copy(update={"hidden_size": 18})
