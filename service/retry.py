"""Waiting out a tracking server that does not answer, and only that.

At start the server needs the registry (the served version's contract in the main process, its
weights in each worker). A tracking server that is down or still starting (a `docker compose
up` starts both at once) is worth waiting for: retried with growing pauses, each logged, until
`STACKCAST_STARTUP_TIMEOUT`. A registry that answers "no such model" is not: that fails at once.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from mlflow.exceptions import RestException

logger = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY = 1.0  # seconds before the second attempt
MAX_DELAY = 10.0  # pauses double up to this: a tracking server back up is noticed within 10 s
_TRANSIENT = (
    requests.exceptions.ConnectionError,  # refused, reset, DNS (covers requests' ConnectTimeout)
    requests.exceptions.Timeout,  # no answer within MLFLOW_HTTP_REQUEST_TIMEOUT
    requests.exceptions.RetryError,  # 429/5xx answers (the server is starting or overloaded)
    requests.exceptions.ChunkedEncodingError,  # the connection broke mid-download
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


class RegistryUnavailableError(RuntimeError):
    """The tracking server did not answer within the startup timeout."""


def unreachable(error: BaseException) -> str | None:
    """Why the tracking server did not answer (e.g. "ConnectionError"); None: another error.

    Only the first kind is worth retrying. MLflow's client wraps transport errors in an
    `MlflowException` (the original is its `__context__`), so the whole chain is searched.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _TRANSIENT):
            return type(current).__name__
        if isinstance(current, RestException) and current.get_http_status_code() >= 500:
            return f"HTTP {current.get_http_status_code()}"
        current = current.__cause__ or current.__context__
    return None


def redact(uri: str) -> str:
    """`uri` without a password in it, fit for logs and error messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def retry_while_unreachable(
    call: Callable[[], T],
    tracking_uri: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`call()`, again after 1, 2, 4, ... 10, 10 s while the tracking server does not answer.

    Raises:
        RegistryUnavailableError: still unreachable after `timeout` seconds.
        Exception: whatever `call` raised for any other reason, at once.
    """
    deadline = clock() + timeout
    delay, attempt = FIRST_DELAY, 1
    while True:
        try:
            return call()
        except Exception as error:
            reason = unreachable(error)
            if reason is None:
                raise
            if clock() + delay > deadline:
                raise RegistryUnavailableError(
                    f"tracking server {redact(tracking_uri)} still unreachable ({reason}) after "
                    f"{attempt} attempts in {timeout:g} s (STACKCAST_STARTUP_TIMEOUT); giving up"
                ) from error
            logger.warning(
                "tracking server %s unreachable (%s); retrying in %.1f s (attempt %d failed)",
                redact(tracking_uri),
                reason,
                delay,
                attempt,
            )
        sleep(delay)
        delay, attempt = min(delay * 2, MAX_DELAY), attempt + 1
