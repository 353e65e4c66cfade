"""The HTTP contract: request and response models, validated by pydantic before any inference.

Every rejection happens here, in the HTTP process, so a bad request gets its own 422 naming the
field and the reason, and never reaches (or fails) the batch it would have joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

# JSON numbers only (no "1.5" strings, no booleans); NaN/Infinity literals are refused.
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
MAX_ID_LENGTH = 256


@dataclass(frozen=True)
class RequestLimits:
    """What the served model and the settings accept; fixed when the server starts."""

    input_size: int  # points the model reads; longer histories use their last input_size
    max_horizon: int  # the model's trained horizon
    min_history: int  # one season: shorter histories cannot be padded seasonally
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


class SeriesIn(BaseModel):
    """One series to forecast: its recent history, oldest first."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=MAX_ID_LENGTH, description="Echoed in the answer.")
    history: list[FiniteFloat] = Field(description="Observations, oldest first.")
    horizon: int | None = Field(
        None, strict=True, ge=1, description="Steps to forecast (default: the model's horizon)."
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

    series: list[SeriesIn] = Field(min_length=1, description="Series to forecast, in order.")

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
