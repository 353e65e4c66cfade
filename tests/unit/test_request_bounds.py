"""What the fuzzer found: values the model can't compute with, integral floats, huge 422s, and
limits the OpenAPI schema did not state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from stackcast.service.errors import MAX_PROBLEMS, problems
from stackcast.service.schema import (
    MAX_ABS_VALUE,
    ForecastRequest,
    RequestLimits,
    set_request_limits,
)

LIMITS = RequestLimits(
    input_size=48, max_horizon=12, min_history=24, max_series=3, max_history_length=500
)
GOOD = [float(i) for i in range(30)]


@pytest.fixture(autouse=True)
def _limits() -> Iterator[None]:
    set_request_limits(LIMITS)
    yield


def _refusal(body: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as refused:
        ForecastRequest.model_validate(body)
    return problems(RequestValidationError(refused.value.errors(), body=body))


def test_values_up_to_the_bound_are_accepted() -> None:
    history = [MAX_ABS_VALUE, -MAX_ABS_VALUE] * 12
    assert ForecastRequest.model_validate({"series": [{"history": history}]})


@pytest.mark.parametrize("value", [MAX_ABS_VALUE * 10, -1e30, 1e38, 1e300])
def test_values_past_what_float32_model_math_survives_are_refused(value: float) -> None:
    # 1e38 used to be answered with a forecast of NaNs, sent as JSON nulls.
    (problem,) = _refusal({"series": [{"history": [*GOOD, value]}]})
    assert problem["field"] == "series[0].history[30]"
    assert "1000000000000000" in problem["msg"]


def test_an_integral_float_horizon_is_that_integer() -> None:
    # JSON Schema (and so the published contract) counts 2.0 as an integer.
    request = ForecastRequest.model_validate({"series": [{"history": GOOD, "horizon": 2.0}]})
    assert request.series[0].horizon == 2 and isinstance(request.series[0].horizon, int)


@pytest.mark.parametrize("horizon", [2.5, "2", True, float("nan"), 0.0])
def test_other_non_integer_horizons_stay_refused(horizon: object) -> None:
    (problem,) = _refusal({"series": [{"history": GOOD, "horizon": horizon}]})
    assert problem["field"] == "series[0].horizon"


def test_a_422_lists_the_first_problems_and_counts_the_rest() -> None:
    found = _refusal({"series": [{"history": [True] * 400}]})
    assert len(found) == MAX_PROBLEMS + 1
    assert [p["field"] for p in found[:2]] == ["series[0].history[0]", "series[0].history[1]"]
    assert found[-1]["type"] == "too_many_errors"
    assert found[-1]["msg"].startswith(f"{400 - MAX_PROBLEMS} more problems")


def test_the_json_schema_states_the_served_limits() -> None:
    schema = ForecastRequest.model_json_schema()
    series = schema["properties"]["series"]
    history = schema["$defs"]["SeriesIn"]["properties"]["history"]
    horizon = schema["$defs"]["SeriesIn"]["properties"]["horizon"]
    assert (series["minItems"], series["maxItems"]) == (1, 3)
    assert (history["minItems"], history["maxItems"]) == (24, 500)
    assert history["items"] == {
        "type": "number",
        "minimum": -MAX_ABS_VALUE,
        "maximum": MAX_ABS_VALUE,
    }
    assert horizon["maximum"] == 12
    assert {"type": "integer", "minimum": 1} in horizon["anyOf"]
