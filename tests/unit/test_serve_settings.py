"""ServeSettings: read from STACKCAST_* variables, unsafe values refused naming the variable."""

from __future__ import annotations

import pytest

from stackcast.service.loader import ModelSource
from stackcast.service.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STACKCAST_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)


def test_defaults_serve_the_champion_from_the_embedded_store() -> None:
    settings = load_settings()
    assert settings.model_uri == "models:/stackcast@champion"
    assert settings.tracking_uri == "sqlite:///mlflow.db"
    assert settings.batch_timeout > 0 and settings.api_key is None


def test_environment_variables_configure_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCAST_PORT", "9100")
    monkeypatch.setenv("STACKCAST_MAX_BATCH_SIZE", "128")
    monkeypatch.setenv("STACKCAST_API_KEY", "k" * 32)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    settings = load_settings()
    assert (settings.port, settings.max_batch_size) == (9100, 128)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k" * 32
    assert settings.tracking_uri == "http://mlflow:5000"
    assert "k" * 32 not in repr(settings)  # the key never shows up in logs


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("STACKCAST_BATCH_TIMEOUT", "0", "greater than 0"),
        ("STACKCAST_BATCH_TIMEOUT", "-1", "greater than 0"),
        ("STACKCAST_MAX_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("STACKCAST_PORT", "80", "greater than or equal to 1024"),
        ("STACKCAST_HOST", "example.com", "'0.0.0.0'"),
        ("STACKCAST_API_KEY", "short", "at least 16 characters"),
        ("STACKCAST_RELOAD_INTERVAL", "0.1", "more than once a second"),
        ("STACKCAST_MODEL_URI", "runs:/abc/model", "models:/NAME@ALIAS"),
        ("STACKCAST_ACCELERATOR", "tpu", "'cuda'"),
        ("STACKCAST_WORKERS_PER_DEVICE", "many", "valid integer"),
    ],
)
def test_unsafe_values_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert f"{variable}: " in str(refused.value)
    assert reason in str(refused.value)


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCAST_BATCH_TIMEOUT", "0")
    monkeypatch.setenv("STACKCAST_PORT", "1")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "STACKCAST_BATCH_TIMEOUT" in message and "STACKCAST_PORT" in message


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="STACKCAST_BATCH_TIMOUT"):
        load_settings(batch_timout=0.01)


@pytest.mark.parametrize(
    ("uri", "alias", "version"),
    [("models:/m@champion", "champion", None), ("models:/m/3", None, "3")],
)
def test_model_uri_forms(uri: str, alias: str | None, version: str | None) -> None:
    source = ModelSource.parse(uri)
    assert (source.name, source.alias, source.version) == ("m", alias, version)
    assert source.follows_alias is (alias is not None)


def test_model_uri_without_alias_or_version_is_refused() -> None:
    with pytest.raises(ValueError, match="models:/NAME@ALIAS"):
        ModelSource.parse("models:/m")
