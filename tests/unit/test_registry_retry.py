"""An unreachable tracking server is waited for, with growing pauses; real errors are not."""

from __future__ import annotations

import logging

import pytest
import requests
from mlflow.exceptions import MlflowException

from stackcast.service.loader import ModelNotFoundError
from stackcast.service.retry import (
    RegistryUnavailableError,
    redact,
    retry_while_unreachable,
    unreachable,
)

URI = "http://ops:hunter2-secret@tracking.internal:5000"


def _refused() -> MlflowException:
    """What MLflow's client raises when nothing listens: the requests error as its context."""
    try:
        try:
            raise requests.exceptions.ConnectionError("Connection refused")
        except requests.exceptions.ConnectionError as error:
            raise MlflowException(f"API request failed with exception {error}")  # noqa: B904
    except MlflowException as wrapped:
        return wrapped


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_transport_errors_are_unreachable_and_others_are_not() -> None:
    assert unreachable(_refused()) == "ConnectionError"
    assert unreachable(requests.exceptions.ReadTimeout()) == "ReadTimeout"
    assert unreachable(ModelNotFoundError("models:/x@champion is not in the registry")) is None
    assert unreachable(MlflowException("RESOURCE_DOES_NOT_EXIST")) is None
    assert unreachable(ValueError("bad config")) is None


def test_retries_with_doubling_pauses_until_the_server_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, calls = Clock(), []

    def call() -> str:
        calls.append(clock.now)
        if len(calls) < 6:
            raise _refused()
        return "version 1"

    with caplog.at_level(logging.WARNING, logger="stackcast.service.retry"):
        result = retry_while_unreachable(call, URI, 300, sleep=clock.sleep, clock=lambda: clock.now)
    assert result == "version 1"
    assert clock.slept == [1.0, 2.0, 4.0, 8.0, 10.0]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[2] == (
        "tracking server http://ops:***@tracking.internal:5000 unreachable (ConnectionError); "
        "retrying in 4.0 s (attempt 3 failed)"
    )
    assert "hunter2" not in caplog.text


def test_gives_up_loudly_after_the_startup_timeout() -> None:
    clock = Clock()

    def call() -> str:
        raise _refused()

    with pytest.raises(RegistryUnavailableError) as raised:
        retry_while_unreachable(call, URI, 30, sleep=clock.sleep, clock=lambda: clock.now)
    message = str(raised.value)
    assert "still unreachable (ConnectionError)" in message
    assert "STACKCAST_STARTUP_TIMEOUT" in message and "hunter2" not in message
    assert clock.now <= 30 and sum(clock.slept) == clock.now


def test_a_missing_model_is_not_retried() -> None:
    clock, calls = Clock(), []

    def call() -> str:
        calls.append(1)
        raise ModelNotFoundError("models:/tiny@champion is not in the registry")

    with pytest.raises(ModelNotFoundError):
        retry_while_unreachable(call, URI, 300, sleep=clock.sleep, clock=lambda: clock.now)
    assert calls == [1] and clock.slept == []


def test_redact_hides_only_the_password() -> None:
    assert redact(URI) == "http://ops:***@tracking.internal:5000"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redact("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
