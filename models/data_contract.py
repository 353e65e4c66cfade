"""The data side of a model's contract: what the weights were trained on and are scored with.

Saved beside the weights (`data_contract.json`, models/serialization.py) when training logs the
model; `stackcast evaluate` reads which data and which seasonality to score with from it, and
the service's `/info` shows it. A version logged before it existed has none (None when read).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DataContract(BaseModel):
    """Where a model's training data came from, its frequency and the metric's seasonality."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(
        description="The run's `data.source`: a bundled M4 subset ('m4_hourly', 'm4_weekly') "
        "or 'file' (a user's long-format file)."
    )
    frequency: str = Field(
        description="The series' frequency as training named it: 'minutely', 'hourly', "
        "'daily', 'business_daily', 'weekly', 'monthly', 'quarterly', 'yearly' or 'steps'."
    )
    freq_alias: str = Field(
        description="The pandas offset alias of one step ('15min', 'h', 'D', 'W-SUN', 'MS', "
        "...); for integer steps, the step."
    )
    seasonality: int = Field(
        ge=1,
        description="m of MASE, sNaive and Naive2: what the run was validated with and what "
        "`evaluate` scores with.",
    )
