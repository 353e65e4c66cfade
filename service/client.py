"""The service's client: read histories from a long-format file, post them, collect forecasts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

COLUMNS = ("unique_id", "ds", "y")
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ServiceError(ValueError):
    """The service refused a request; the message carries its reasons, field by field."""


def read_histories(path: Path, ids: Sequence[str] = ()) -> dict[str, list[float]]:
    """`unique_id -> y values ordered by ds`, from a CSV or Parquet file in long format.

    Only the series in `ids` (in that order) when given; an id the file lacks is an error.
    """
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith(".parquet"):
        frame = pd.read_parquet(path)
    elif suffixes.endswith((".csv", ".csv.gz")):
        frame = pd.read_csv(path)
    else:
        raise ValueError(f"{path}: use a .csv, .csv.gz or .parquet file")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; need {list(COLUMNS)}")
    frame = frame.astype({"unique_id": str}).sort_values(["unique_id", "ds"], kind="stable")
    grouped = {
        str(uid): group["y"].astype(float).tolist() for uid, group in frame.groupby("unique_id")
    }
    if not ids:
        return grouped
    unknown = [i for i in ids if i not in grouped]
    if unknown:
        raise ValueError(f"{path}: no series {unknown}")
    return {i: grouped[i] for i in ids}


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
        httpx.HTTPError: the service could not be reached.
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
    response = client.post("/predict", json=body)
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
