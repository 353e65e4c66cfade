"""`ServeSettings`: every knob of the server, read from `STACKCAST_*` environment variables."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stackcast.models.contract import EMBEDDED_TRACKING_URI

ENV_PREFIX = "STACKCAST_"
MIN_API_KEY_LENGTH = 16  # a shorter shared secret is guessable


class SettingsError(ValueError):
    """Refused configuration; the message names each offending environment variable."""


def _default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or EMBEDDED_TRACKING_URI


class ServeSettings(BaseSettings):
    """Server configuration. Each field is the env var `STACKCAST_<FIELD NAME IN CAPS>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, protected_namespaces=()
    )

    model_uri: str = Field(
        "models:/stackcast@champion",
        description="Registered model to serve; `models:/NAME@ALIAS` follows the alias.",
    )
    tracking_uri: str = Field(
        default_factory=_default_tracking_uri,
        description="MLflow tracking + registry URI (default: MLFLOW_TRACKING_URI or ./mlflow.db).",
    )
    host: Literal["0.0.0.0", "127.0.0.1", "::"] = Field(
        "0.0.0.0", description="Bind address (LitServe accepts these three)."
    )
    port: int = Field(8000, ge=1024, le=65535, description="HTTP port (LitServe refuses < 1024).")
    accelerator: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Device for inference: the GPU when there is one under `auto`."
    )
    max_batch_size: int = Field(
        64, ge=1, le=4096, description="Most requests merged into one forward pass."
    )
    max_batch_series: int = Field(
        256,
        ge=1,
        le=65536,
        description="A batch takes no more requests once it holds this many series.",
    )
    batch_timeout: float = Field(
        0.001,
        gt=0,
        le=1.0,
        description="Seconds a batch waits for more requests after its first (> 0).",
    )
    workers_per_device: int = Field(
        1, ge=1, le=32, description="Inference processes per device (each holds the model)."
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="CPU threads per inference worker (default: half the cores over the workers).",
    )
    api_servers: int | None = Field(
        None, ge=1, le=32, description="HTTP server processes (default: one per inference worker)."
    )
    api_key: SecretStr | None = Field(
        None, description="When set, /predict and /info require it in the X-API-Key header."
    )
    max_series_per_request: int = Field(
        256, ge=1, le=100_000, description="More series in one request get a 422."
    )
    max_history_length: int = Field(
        10_000, ge=1, description="Longest history accepted per series (points)."
    )
    max_payload_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Larger request bodies get a 413."
    )
    reload_interval: float = Field(
        10.0,
        ge=0,
        description="Seconds between alias checks for a newly promoted version; 0 disables.",
    )
    request_timeout: float = Field(
        30.0, gt=0, description="Seconds a request may wait for the model before a 504."
    )
    startup_timeout: float = Field(
        300.0,
        gt=0,
        description="Seconds to keep retrying an unreachable tracking server at start, then fail.",
    )

    @field_validator("api_key")
    @classmethod
    def _strong_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < MIN_API_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_API_KEY_LENGTH} characters (or unset)")
        return key

    @field_validator("model_uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        if not uri.startswith("models:/"):
            raise ValueError("must be a registry URI: models:/NAME@ALIAS or models:/NAME/VERSION")
        return uri

    @field_validator("reload_interval")
    @classmethod
    def _sensible_reload(cls, seconds: float) -> float:
        if 0 < seconds < 1:
            raise ValueError("polling the registry more than once a second is refused (or 0)")
        return seconds


def load_settings(**overrides: object) -> ServeSettings:
    """Read the environment (plus `overrides`); refuse bad values naming the variable."""
    try:
        return ServeSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ""
            name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
            lines.append(f"{name}: {problem['msg']}")
        raise SettingsError("invalid server settings:\n  " + "\n  ".join(lines)) from None
