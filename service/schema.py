"""The HTTP contract: request and response models, validated by pydantic before any inference.

Every rejection happens here, in the HTTP process, so a bad request gets its own 422 naming the
field and the reason, and never reaches (or fails) the batch it would have joined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

# The model computes in float32 (max 3.4e38): histories of 1e38 came back as forecasts of NaN,
# sent as JSON nulls (a window's summed |x| and the rescaled forecast overflow). 1e15 leaves 23
# orders of magnitude for both, and is past any count or currency a forecaster is asked about.
MAX_ABS_VALUE = 1e15
MAX_ABS_TEXT = f"{MAX_ABS_VALUE:.0e}".replace("e+", "e")  # "1e15", as the docs write it
# JSON numbers only (no "1.5" strings, no booleans); NaN/Infinity literals are refused.
FiniteFloat = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)
]
MAX_ID_LENGTH = 256


def _integral(value: object) -> object:
    """JSON's `2.0` is the integer 2 (JSON Schema agrees); `2.5`, `"2"` and `true` stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The constraints before the validator: the other way round, pydantic publishes `ge`, not `minimum`.
Steps = Annotated[int, Field(strict=True, ge=1), BeforeValidator(_integral)]


@dataclass(frozen=True)
class RequestLimits:
    """What the served model and the settings accept; fixed when the server starts."""

    input_size: int  # points the model reads; longer histories use their last input_size
    max_horizon: int  # the model's trained horizon
    min_history: int  # models/window.py:min_history (one season): the model needs them
    max_series: int
    max_history_length: int


_limits: RequestLimits | None = None


def set_request_limits(limits: RequestLimits) -> None:
    """Fix the limits requests are validated against (before the HTTP processes fork)."""
    global _limits
    _limits = limits


def request_limits() -> RequestLimits:
    """The limits in force; the server sets them from the served model at start."""
    if _limits is None:
        raise RuntimeError("request limits are not set: the server sets them at start")
    return _limits


def _published(**keywords: Callable[[RequestLimits], int]) -> Callable[[dict[str, Any]], None]:
    """A `json_schema_extra` writing limits into the OpenAPI schema once the server has set them.

    The limits come from the served model, so they can't be static `Field` constraints; the
    validators below enforce them, and this makes `/openapi.json` say what they enforce.
    """

    def publish(schema: dict[str, Any]) -> None:
        if _limits is None:  # a schema generated outside the server: no limits to state
            return
        for keyword, limit in keywords.items():
            schema[keyword] = limit(_limits)

    return publish


class SeriesIn(BaseModel):
    """One series to forecast: its recent history, oldest first."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=MAX_ID_LENGTH, description="Echoed in the answer.")
    history: list[FiniteFloat] = Field(
        description=f"Observations, oldest first: finite JSON numbers within ±{MAX_ABS_TEXT}.",
        json_schema_extra=_published(
            minItems=lambda limits: limits.min_history,
            maxItems=lambda limits: limits.max_history_length,
        ),
    )
    horizon: Steps | None = Field(
        None,
        description="Steps to forecast (default: the model's horizon).",
        json_schema_extra=_published(maximum=lambda limits: limits.max_horizon),
    )

    @field_validator("history")
    @classmethod
    def _history_length(cls, history: list[float]) -> list[float]:
        limits = request_limits()
        if len(history) < limits.min_history:
            raise ValueError(
                f"needs at least {limits.min_history} points (one season), got {len(history)}"
            )
        if len(history) > limits.max_history_length:
            raise ValueError(
                f"at most {limits.max_history_length} points accepted, got {len(history)}"
                f" (the model reads the last {limits.input_size})"
            )
        return history

    @field_validator("horizon")
    @classmethod
    def _horizon_trained(cls, horizon: int | None) -> int | None:
        limit = request_limits().max_horizon
        if horizon is not None and horizon > limit:
            raise ValueError(f"at most {limit} (the model's trained horizon), got {horizon}")
        return horizon


class ForecastRequest(BaseModel):
    """`POST /predict` body: one or many series."""

    model_config = ConfigDict(extra="forbid")

    series: list[SeriesIn] = Field(
        min_length=1,
        description="Series to forecast, in order.",
        json_schema_extra=_published(maxItems=lambda limits: limits.max_series),
    )

    def __str__(self) -> str:
        # LitServe formats every request into a debug f-string whether or not debug logging is
        # on; pydantic's str of thousands of floats cost ~6% of the HTTP process's CPU.
        return f"ForecastRequest(<{len(self.series)} series>)"

    __repr__ = __str__

    @field_validator("series")
    @classmethod
    def _not_too_many(cls, series: list[SeriesIn]) -> list[SeriesIn]:
        limit = request_limits().max_series
        if len(series) > limit:
            raise ValueError(f"at most {limit} series per request, got {len(series)}")
        return series


class ModelRef(BaseModel):
    """The registered model version that answered."""

    name: str
    version: str
    run_id: str


class SeriesForecast(BaseModel):
    """Point forecast of one series, `horizon` steps after its last observation."""

    id: str | None
    mean: list[float]


class ForecastResponse(BaseModel):
    """`POST /predict` answer: forecasts in the order of the request's series."""

    model: ModelRef
    forecasts: list[SeriesForecast]
