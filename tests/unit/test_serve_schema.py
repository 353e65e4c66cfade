"""The request contract: every bad input is refused by pydantic with the field and the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from stackcast.service.errors import field_path, problems
from stackcast.service.schema import ForecastRequest, RequestLimits, set_request_limits

LIMITS = RequestLimits(
    input_size=48, max_horizon=12, min_history=24, max_series=3, max_history_length=500
)


@pytest.fixture(autouse=True)
def _limits() -> Iterator[None]:
    set_request_limits(LIMITS)
    yield


def _refusal(body: Any) -> list[dict[str, Any]]:
    """Validate as FastAPI does: the parsed JSON body, in python mode."""
    with pytest.raises(ValidationError) as refused:
        ForecastRequest.model_validate(json.loads(json.dumps(body)))
    error = RequestValidationError(refused.value.errors(), body=body)
    return problems(error)


GOOD = [float(i) for i in range(30)]


def test_good_request_is_accepted() -> None:
    request = ForecastRequest.model_validate(
        {"series": [{"id": "H1", "history": GOOD, "horizon": 5}, {"history": [1] * 24}]}
    )
    assert request.series[0].horizon == 5 and request.series[1].id is None


@pytest.mark.parametrize(
    ("series", "field", "reason"),
    [
        ({"history": GOOD[:10]}, "series[0].history", "at least 24 points"),
        ({"history": []}, "series[0].history", "at least 24 points"),
        ({"history": [1.0] * 501}, "series[0].history", "at most 500 points"),
        ({"history": GOOD, "horizon": 13}, "series[0].horizon", "trained horizon"),
        ({"history": GOOD, "horizon": 0}, "series[0].horizon", "greater than or equal to 1"),
        ({"history": GOOD, "horizon": 2.5}, "series[0].horizon", "valid integer"),
        ({"history": [*GOOD, "7"]}, "series[0].history[30]", "valid number"),
        ({"history": [*GOOD, True]}, "series[0].history[30]", "valid number"),
        ({"history": [*GOOD, None]}, "series[0].history[30]", "valid number"),
        ({"history": "1,2,3"}, "series[0].history", "valid list"),
        ({"history": GOOD, "colour": "red"}, "series[0].colour", "Extra inputs"),
        ({"id": 5, "history": GOOD}, "series[0].id", "valid string"),
    ],
)
def test_bad_series_are_refused_with_field_and_reason(
    series: dict[str, Any], field: str, reason: str
) -> None:
    (problem,) = _refusal({"series": [series]})
    assert problem["field"] == field
    assert reason in problem["msg"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_refused(value: float) -> None:
    (problem,) = _refusal({"series": [{"history": [*GOOD, value]}]})  # NaN / Infinity literals
    assert problem["field"] == "series[0].history[30]"
    assert "finite number" in problem["msg"]
    json.dumps(problem, allow_nan=False)  # the answer itself never carries the NaN back


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"series": []}, "at least 1 item"),
        ({"series": [{"history": GOOD}] * 4}, "at most 3 series per request, got 4"),
        ({}, "Field required"),
        ({"series": [{"history": GOOD}], "model": "x"}, "Extra inputs"),
    ],
)
def test_bad_requests_are_refused(body: dict[str, Any], reason: str) -> None:
    assert any(reason in p["msg"] for p in _refusal(body))


def test_field_paths_read_like_code() -> None:
    assert field_path(("body", "series", 2, "history", 7)) == "series[2].history[7]"
    assert field_path(("body",)) == "body"
