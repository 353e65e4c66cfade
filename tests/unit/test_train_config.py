from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from stackcast.training.config import DEFAULT_CONFIG, TrainConfig, load_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
M4_YAML = REPO / "configs" / "m4_hourly.yaml"


def error_locs(err: ValidationError) -> list[str]:
    return [".".join(str(part) for part in e["loc"]) for e in err.errors()]


def test_default_config_is_the_m4_hourly_yaml() -> None:
    assert DEFAULT_CONFIG == M4_YAML
    config = load_config()
    assert isinstance(config, TrainConfig)
    assert config == load_config(M4_YAML)
    raw = yaml.safe_load(M4_YAML.read_text())
    # every value in the file made it into the typed config
    for section, values in raw.items():
        for key, value in values.items():
            assert getattr(getattr(config, section), key) == value, f"{section}.{key}"
    assert config.model.input_size == 168
    assert config.model.horizon == 48


def test_overrides_are_typed() -> None:
    # The YAML sets forget_bias (LSTM only), so switching cell must clear it too.
    config = load_config(
        M4_YAML,
        [
            "model.hidden_size=32",
            "trainer.gradient_clip_val=null",
            "model.cell=gru",
            "model.forget_bias=null",
        ],
    )
    assert config.model.hidden_size == 32
    assert type(config.model.hidden_size) is int
    assert config.trainer.gradient_clip_val is None
    assert config.model.cell == "gru"
    assert config.model.forget_bias is None
    # untouched keys keep the file's values
    assert config.optim.lr == 0.002


def test_switching_cell_away_from_lstm_while_yaml_sets_forget_bias_is_rejected() -> None:
    with pytest.raises(ValidationError, match="forget_bias"):
        load_config(M4_YAML, ["model.cell=gru"])


def test_overrides_apply_in_order_and_parse_yaml_scalars() -> None:
    config = load_config(
        M4_YAML,
        [
            "optim.lr=0.01",
            "optim.lr=0.05",  # last one wins
            "model.residual=true",
            "trainer.progress_bar=false",
            "registry.alias= best ",
            "data.samples_per_epoch=null",
        ],
    )
    assert config.optim.lr == 0.05
    assert config.model.residual is True
    assert config.trainer.progress_bar is False
    assert config.registry.alias == "best"
    assert config.data.samples_per_epoch is None


def test_overrides_work_on_a_minimal_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  cell: rnn_relu\n")
    config = load_config(path, ["model.init=identity", "trainer.max_epochs=2"])
    assert config.model.cell == "rnn_relu"
    assert config.model.init == "identity"
    assert config.trainer.max_epochs == 2
    assert config.optim == TrainConfig().optim  # missing sections take their defaults


@pytest.mark.parametrize(
    ("override", "loc"),
    [
        ("model.hidden=3", "model.hidden"),
        ("trainer.bogus=1", "trainer.bogus"),
        ("bogus.x=1", "bogus"),
    ],
)
def test_unknown_key_is_rejected_and_named(override: str, loc: str) -> None:
    with pytest.raises(ValidationError) as err:
        load_config(M4_YAML, [override])
    assert error_locs(err.value) == [loc]
    assert err.value.errors()[0]["type"] == "extra_forbidden"


def test_unknown_key_in_the_yaml_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ValidationError) as err:
        load_config(path)
    assert error_locs(err.value) == ["optim.learning_rate"]


def test_bad_value_names_the_allowed_values() -> None:
    with pytest.raises(ValidationError) as err:
        load_config(M4_YAML, ["model.cell=transformer"])
    assert error_locs(err.value) == ["model.cell"]
    message = str(err.value)
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        assert f"'{cell}'" in message


@pytest.mark.parametrize(
    ("override", "loc"),
    [
        ("optim.lr=0", "optim.lr"),
        ("optim.batch_size=many", "optim.batch_size"),
        ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val"),
        ("data.stride=0", "data.stride"),
    ],
)
def test_out_of_range_or_mistyped_values_are_rejected(override: str, loc: str) -> None:
    with pytest.raises(ValidationError) as err:
        load_config(M4_YAML, [override])
    assert error_locs(err.value) == [loc]


@pytest.mark.parametrize("override", ["model.hidden_size", "=3", ""])
def test_malformed_override_raises_value_error(override: str) -> None:
    with pytest.raises(ValueError, match=r"section\.key=value") as err:
        load_config(M4_YAML, [override])
    assert not isinstance(err.value, ValidationError)


def test_override_below_a_value_raises_value_error() -> None:
    with pytest.raises(ValueError, match="'cell' is a value, not a section"):
        load_config(M4_YAML, ["model.cell.x=1"])


def test_file_source_needs_a_path(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"data\.path is required") as err:
        load_config(M4_YAML, ["data.source=file"])
    assert error_locs(err.value) == ["data"]
    data = tmp_path / "series.csv"
    config = load_config(M4_YAML, ["data.source=file", f"data.path={data}"])
    assert config.data.path == data


def test_path_without_file_source_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"data\.path is only read"):
        load_config(M4_YAML, [f"data.path={tmp_path / 'x.csv'}"])


def test_flat_has_section_dot_key_entries() -> None:
    config = load_config(M4_YAML, ["trainer.gradient_clip_val=null"])
    flat = config.flat()
    assert flat["model.cell"] == "lstm"
    assert flat["trainer.gradient_clip_val"] is None
    assert flat["optim.lr"] == 0.002
    assert flat["model.hidden_size"] == yaml.safe_load(M4_YAML.read_text())["model"]["hidden_size"]
    assert flat["data.path"] is None
    assert isinstance(flat["trainer.checkpoint_dir"], str)  # JSON-ready for MLflow params
    assert all(key.count(".") == 1 for key in flat)
    sections = {key.split(".")[0] for key in flat}
    assert sections == {"model", "data", "optim", "trainer", "telemetry", "registry"}
    assert len(flat) == sum(len(type(getattr(config, s)).model_fields) for s in sections)


def test_config_is_frozen() -> None:
    config = load_config()
    with pytest.raises(ValidationError):
        config.optim.lr = 1.0  # type: ignore[misc]


def test_non_mapping_yaml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- model\n- data\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(path)


def test_threads_is_auto_or_a_positive_count() -> None:
    assert load_config(M4_YAML).trainer.threads == "auto"
    assert load_config(M4_YAML, ["trainer.threads=3"]).trainer.threads == 3
    for bad in ("0", "many"):
        with pytest.raises(ValidationError) as err:
            load_config(M4_YAML, [f"trainer.threads={bad}"])
        assert {loc.split(".")[1] for loc in error_locs(err.value)} == {"threads"}
        assert "'auto'" in str(err.value)
