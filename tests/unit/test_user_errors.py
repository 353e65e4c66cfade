"""The error table: each kind of user error gets its status and one line; the rest is a crash."""

from __future__ import annotations

import importlib
import signal

import pytest
from pydantic import BaseModel, ValidationError

from stackcast.service.settings import SettingsError
from stackcast.training.config import ConfigError, load_config
from stackcast.training.data_errors import DuplicateTimestampError
from stackcast.user_errors import KINDS, ExitCode, classify, one_line


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_named_class_exists(name: str) -> None:
    # The table matches by name: a rename must fail here, not silently turn errors into crashes.
    module, _, cls = name.rpartition(".")
    found = getattr(importlib.import_module(module), cls)
    assert isinstance(found, type) and issubclass(found, Exception)


def test_statuses_are_distinct_and_keep_the_conventions() -> None:
    assert len({int(code) for code in ExitCode}) == len(ExitCode)
    assert ExitCode.CRASH == 1  # Python's own for an uncaught exception
    assert ExitCode.USAGE == 2  # Click's own
    assert ExitCode.INTERRUPTED == 128 + signal.SIGTERM


def test_a_subclass_takes_its_base_kind() -> None:
    found = classify(DuplicateTimestampError("2 rows share a (unique_id, ds) pair"))
    assert found is not None and found.code == ExitCode.DATA
    assert found.message == "2 rows share a (unique_id, ds) pair"


def test_a_missing_file_names_its_path() -> None:
    with pytest.raises(FileNotFoundError) as caught:
        open("/nonexistent/config.yaml")  # noqa: SIM115
    found = classify(caught.value)
    assert found is not None and found.code == ExitCode.MISSING_FILE
    assert found.message == "No such file or directory: /nonexistent/config.yaml"


def test_a_config_validation_error_is_one_line_naming_key_and_value() -> None:
    with pytest.raises(ValidationError) as caught:
        load_config(overrides=["model.cell=lstmx", "optim.lr=-1"])
    found = classify(caught.value)
    assert found is not None and found.code == ExitCode.CONFIG
    assert "\n" not in found.message
    assert "model.cell: Input should be 'lstm'" in found.message
    assert "(got 'lstmx')" in found.message
    assert "optim.lr: Input should be greater than 0 (got -1)" in found.message
    assert classify(ConfigError("override 'x' is not of the form section.key=value")) is not None


def test_another_models_validation_error_is_a_crash() -> None:
    class Internal(BaseModel):
        n: int

    with pytest.raises(ValidationError) as caught:
        Internal.model_validate({"n": "many"})
    assert classify(caught.value) is None


def test_anything_else_is_a_crash() -> None:
    assert classify(RuntimeError("a bug")) is None
    assert classify(ValueError("a plain ValueError is not a user error")) is None


def test_a_multi_line_message_becomes_one_line() -> None:
    error = SettingsError("invalid server settings:\n  A: bad\n  B: worse")
    found = classify(error)
    assert found is not None and found.code == ExitCode.CONFIG
    assert found.message == "invalid server settings: A: bad; B: worse"
    assert one_line("") == ""


def test_the_readme_documents_every_status() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} | `{code.name}` |" in readme, f"README lacks exit status {code}"


def test_an_mlflow_error_caused_by_a_refused_connection_is_an_unreachable_server() -> None:
    import requests
    from mlflow.exceptions import MlflowException

    wrapped = MlflowException("API request to http://tracking:5000/api failed")
    # As MLflow's client raises it: inside `except`, so the transport error is its context.
    wrapped.__context__ = requests.exceptions.ConnectionError("Connection refused")
    found = classify(wrapped)
    assert found is not None and found.code == ExitCode.TRACKING_UNREACHABLE
    assert "unreachable (ConnectionError)" in found.message
    assert classify(TimeoutError("a timeout elsewhere")) is None  # not MLflow's: a crash


def test_an_mlflow_not_found_is_an_unknown_model() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    error = MlflowException(
        "Registered Model with name=nobody not found", error_code=RESOURCE_DOES_NOT_EXIST
    )
    found = classify(error)
    assert found is not None and found.code == ExitCode.UNKNOWN_MODEL
    assert found.message.startswith("Registered Model with name=nobody not found (registry: ")
