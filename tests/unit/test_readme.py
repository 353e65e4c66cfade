"""The README stays true: it documents every config key and the commands CI runs."""

from __future__ import annotations

from pathlib import Path

from stackcast.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def test_every_config_key_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for section, field in TrainConfig.model_fields.items():
        for key in field.annotation.model_fields:  # type: ignore[union-attr]
            assert f"`{section}.{key}`" in readme, f"README lacks config key {section}.{key}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
    assert "make demo" in readme


def test_every_server_setting_is_documented() -> None:
    from stackcast.service.settings import ENV_PREFIX, ServeSettings

    readme = (ROOT / "README.md").read_text()
    for name in ServeSettings.model_fields:
        assert f"`{ENV_PREFIX}{name.upper()}`" in readme, f"README lacks {ENV_PREFIX}{name.upper()}"


def test_the_frequency_table_is_the_codes() -> None:
    from stackcast.training.frequency_defaults import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text()


def test_the_request_rules_are_documented() -> None:
    from stackcast.service.media_type import JSON
    from stackcast.service.schema import MAX_ABS_TEXT

    readme = (ROOT / "README.md").read_text()
    assert f"within ±{MAX_ABS_TEXT}" in readme, "README lacks the history value bound"
    assert "gets a 415" in readme and f"Content-Type: {JSON}" in readme
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert f"`GET {path}`" in readme, f"README lacks {path}"
