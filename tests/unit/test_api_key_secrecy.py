"""The API key is compared in constant time and never shows up in errors or settings output."""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from stackcast.service.api import ForecastAPI
from stackcast.service.schema import RequestLimits
from stackcast.service.settings import SettingsError, load_settings

KEY = "s3cret-key-0123456789-abcdef"
GUESS = "guess-key-9876543210-zyxwvu"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STACKCAST_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)


def _request(path: str, key: str | None) -> Request:
    headers = [] if key is None else [(b"x-api-key", key.encode())]
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": path,
        "query_string": b"",
        "headers": headers,
    }
    return Request(scope)


def _api(tmp_path: Path) -> ForecastAPI:
    limits = RequestLimits(
        input_size=48, max_horizon=12, min_history=24, max_series=256, max_history_length=1000
    )
    return ForecastAPI(load_settings(api_key=KEY), limits, tmp_path)


def test_settings_output_never_contains_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCAST_API_KEY", KEY)
    settings = load_settings()
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(vars(settings))):
        assert KEY not in shown


@pytest.mark.parametrize("short", ["tooshort-secret", "x"])
def test_a_refused_key_is_not_echoed_in_the_error(
    monkeypatch: pytest.MonkeyPatch, short: str
) -> None:
    monkeypatch.setenv("STACKCAST_API_KEY", short)
    monkeypatch.setenv("STACKCAST_PORT", "80")  # a second problem, reported alongside
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "STACKCAST_API_KEY: Value error, must be at least 16 characters" in message
    assert short not in message
    # Nothing in the chain carries it either (pydantic's own error echoes every input).
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_keys_are_compared_with_compare_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("stackcast.service.api.hmac.compare_digest", spy)
    api = _api(tmp_path)
    asyncio.run(api.authorize(_request("/predict", KEY)))  # accepted
    with pytest.raises(HTTPException) as raised:
        asyncio.run(api.authorize(_request("/predict", GUESS)))
    assert len(calls) == 2
    # Digests of equal length: the time taken says nothing about the key, not even its length.
    assert all(len(a) == len(b) == 32 for a, b in calls)
    assert KEY.encode() not in calls[0] and GUESS.encode() not in calls[1]
    assert raised.value.status_code == 401
    assert KEY not in str(raised.value.detail) and GUESS not in str(raised.value.detail)


def test_missing_key_is_refused_and_health_stays_open(tmp_path: Path) -> None:
    api = _api(tmp_path)
    with pytest.raises(HTTPException) as raised:
        asyncio.run(api.authorize(_request("/info", None)))
    assert raised.value.status_code == 401
    asyncio.run(api.authorize(_request("/health", None)))  # container health checks
