"""The service's client: post histories to `/predict`, collect the forecasts.

Reading and validating the file is `stackcast predict`'s (`stackcast/predict.py`): it applies
training's long-format rules, which the service must not import.
"""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ServiceError(ValueError):
    """The service refused a request; the message carries its reasons, field by field."""


class ServiceUnreachableError(ConnectionError):
    """No service answered at the URL (refused, unknown host, timed out); the message names it."""


def forecast(
    url: str,
    histories: dict[str, list[float]],
    horizon: int | None = None,
    api_key: str | None = None,
    series_per_request: int = 64,
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Forecast every series; returns `unique_id, h, y_hat` rows and the versions that answered.

    Raises:
        ServiceError: the service answered with an error (the message names field and reason).
        ServiceUnreachableError: no service answered at `url`.
    """
    if series_per_request < 1:
        raise ValueError("series_per_request must be >= 1")
    headers = {"X-API-Key": api_key} if api_key else {}
    ids = list(histories)
    rows: list[tuple[str, int, float]] = []
    models: list[dict[str, str]] = []
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=TIMEOUT) as client:
        for start in range(0, len(ids), series_per_request):
            chunk = ids[start : start + series_per_request]
            body = {"series": [_series(i, histories[i], horizon) for i in chunk]}
            answer = _post(client, body)
            if answer["model"] not in models:
                models.append(answer["model"])
            for item in answer["forecasts"]:
                rows.extend((item["id"], h, y) for h, y in enumerate(item["mean"], start=1))
    return pd.DataFrame(rows, columns=["unique_id", "h", "y_hat"]), models


def _series(uid: str, history: list[float], horizon: int | None) -> dict[str, Any]:
    series: dict[str, Any] = {"id": uid, "history": history}
    if horizon is not None:
        series["horizon"] = horizon
    return series


def _post(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = client.post("/predict", json=body)
    except httpx.TransportError as error:
        raise ServiceUnreachableError(
            f"no service answers at {client.base_url} ({type(error).__name__}: {error}); "
            "start one with `stackcast serve`, or pass its --url"
        ) from error
    if response.is_success:
        answer: dict[str, Any] = response.json()
        return answer
    raise ServiceError(f"HTTP {response.status_code} from {response.url}: {_reasons(response)}")


def _reasons(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:500]
    if isinstance(detail, list):  # our 422 body: one entry per problem
        return "; ".join(f"{d.get('field', '?')}: {d.get('msg', d)}" for d in detail)
    return str(detail)
