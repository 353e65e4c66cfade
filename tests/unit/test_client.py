"""The service's client: a service that is down is named by its URL."""

from __future__ import annotations

import socket

import pytest

from stackcast.service.client import ServiceUnreachableError, forecast


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_service_that_is_down_is_named_by_its_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(ServiceUnreachableError, match=f"no service answers at {url}"):
        forecast(url, {"A": [1.0, 2.0, 3.0]})


def test_series_per_request_must_be_positive() -> None:
    with pytest.raises(ValueError, match="series_per_request must be >= 1"):
        forecast("http://127.0.0.1:1", {"A": [1.0]}, series_per_request=0)
