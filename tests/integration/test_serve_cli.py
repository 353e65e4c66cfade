"""`stackcast serve` refuses to start, with a message, on bad settings or a missing model."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from stackcast.cli import app
from stackcast.user_errors import ExitCode
from tests.conftest import ServedStore


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STACKCAST_"):
            monkeypatch.delenv(name)


def test_missing_model_stops_serve_with_a_hint(served_store: ServedStore) -> None:
    env = {"STACKCAST_TRACKING_URI": served_store.tracking_uri}
    result = CliRunner().invoke(app, ["serve", "--model-uri", "models:/nobody@champion"], env=env)
    assert result.exit_code == ExitCode.UNKNOWN_MODEL
    assert "models:/nobody@champion is not in the registry" in result.output
    assert "make demo" in result.output


def test_bad_setting_stops_serve_naming_the_variable() -> None:
    result = CliRunner().invoke(app, ["serve"], env={"STACKCAST_BATCH_TIMEOUT": "0"})
    assert result.exit_code == ExitCode.CONFIG
    assert "STACKCAST_BATCH_TIMEOUT: Input should be greater than 0" in result.output
