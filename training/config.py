"""The training config: one YAML file plus `--set key=value` overrides, every key typed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stackcast.models.config import ModelConfig
from stackcast.training.data import FillPolicy
from stackcast.training.frequency import check_freq_setting

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_CONFIG = CONFIGS / "m4_hourly.yaml"  # `stackcast train` with no --config
AUTO_CONFIG = CONFIGS / "auto.yaml"  # `stackcast train --data FILE` with no --config
SelectionMetric = Literal["val/owa", "val/smape", "val/mase", "val/loss"]


class ConfigError(ValueError):
    """A config file or `--set` override that cannot be read; the message names the key."""


@dataclass(frozen=True)
class Choice:
    """One resolved `auto` key, with the reason it was chosen."""

    key: str
    value: Any
    reason: str

    def line(self) -> str:
        """`key = value  (reason)`: what `train` prints."""
        return f"{self.key} = {self.value}  ({self.reason})"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Section):
    """Where the series come from and how they are windowed."""

    source: Literal["m4_hourly", "m4_weekly", "file"] = Field(
        "m4_hourly",
        description="A bundled M4 subset's train part (Hourly, Weekly), or a long-format file.",
    )
    path: Path | None = Field(None, description="CSV/Parquet in long format (source=file).")
    freq: str = Field(
        "auto",
        description="Frequency of ds: auto (inferred), or minutely, Kmin (e.g. 15min), hourly, "
        "daily, business_daily, weekly, monthly, quarterly, yearly; integer ds: what a step is.",
    )
    fill: FillPolicy = Field(
        "error", description="What to do with NaN/inf values and missing timestamps (gaps)."
    )
    stride: int = Field(1, ge=1, description="Step between consecutive training windows.")
    samples_per_epoch: int | None = Field(
        None, ge=1, description="Windows drawn per epoch (None: all windows, shuffled)."
    )
    seasonality: int = Field(24, ge=1, description="Seasonal period m for MASE and Naive2.")
    val_windows: int = Field(
        1,
        ge=1,
        description="Rolling validation origins per series (the last ones, val_step apart); "
        "no training target overlaps any validation target.",
    )
    val_step: int | None = Field(
        None, ge=1, description="Points between validation origins (None: the horizon)."
    )
    history_limit: int | None = Field(
        None,
        ge=1,
        description="Training windows whose target ends in the last N points of each series' "
        "training part (None: all): every series then weighs about the same, recent data most.",
    )
    drop_short: bool = Field(
        False,
        description="Drop series too short to validate (with a warning naming how many) "
        "instead of stopping with an error that lists them.",
    )

    @field_validator("freq")
    @classmethod
    def _known_freq(cls, value: str) -> str:
        return check_freq_setting(value)

    @model_validator(mode="after")
    def _path_matches_source(self) -> Self:
        if self.source == "file" and self.path is None:
            raise ValueError("data.path is required when data.source is 'file'")
        if self.source != "file" and self.path is not None:
            raise ValueError(
                f"data.path is only read when data.source is 'file' (got '{self.source}')"
            )
        return self


class OptimConfig(_Section):
    """Loss and optimizer."""

    loss: Literal["mae", "mse", "mase"] = Field(
        "mae",
        description="mae/mse on each window's normalized scale; mase divides the absolute error "
        "by the window's mean seasonal difference (data.seasonality), as the MASE metric does.",
    )
    optimizer: Literal["adamw", "sgd"] = Field(
        "adamw",
        description="AdamW, or SGD with momentum 0.9 (the setting in which exploding gradients "
        "blow up the weights: Adam scales every update to about lr).",
    )
    lr: float = Field(1e-3, gt=0, description="Learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay (decoupled for AdamW).")
    batch_size: int = Field(256, ge=1, description="Windows per optimizer step.")
    lr_decay: float = Field(
        1.0, gt=0, le=1, description="Multiplicative learning-rate decay per epoch (1 = constant)."
    )


class TrainerConfig(_Section):
    """Lightning Trainer settings."""

    max_epochs: int = Field(30, ge=1, description="Upper bound on epochs.")
    patience: int = Field(5, ge=1, description="Early stopping: epochs without val/loss gain.")
    gradient_clip_val: float | None = Field(
        1.0, gt=0, description="Clipping threshold (None turns clipping off)."
    )
    gradient_clip_algorithm: Literal["norm", "value"] = Field(
        "norm", description="Clip the total gradient norm, or each gradient value."
    )
    seed: int = Field(42, description="Seed for weights, sampling and dropout.")
    accelerator: Literal["auto", "cpu", "gpu"] = Field("auto", description="GPU when present.")
    precision: Literal["32-true", "bf16-mixed"] = Field(
        "32-true", description="bf16-mixed needs a GPU."
    )
    limit_train_batches: int | None = Field(
        None, ge=1, description="Cap on batches per epoch (tests, smoke runs)."
    )
    strategy: Literal["auto", "ddp"] = Field(
        "auto",
        description="auto: one process; ddp: one process per device (Lightning re-runs the "
        "command for ranks > 0), each training on its own shard of every epoch's batches.",
    )
    devices: int = Field(
        1, ge=1, description="Devices (GPUs, or CPU processes) to train on; > 1 needs ddp."
    )
    progress_bar: bool = Field(True, description="Show Lightning's progress bar.")
    checkpoint_dir: Path = Field(
        Path("checkpoints"),
        description="Best and last (every epoch, for --resume) checkpoints go to DIR/<run id>.",
    )
    threads: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description="Torch threads per training process; auto: the cores this process may use "
        "divided by the training processes on the machine (devices under ddp, plus other "
        "running `stackcast train`s), at least 1.",
    )

    @model_validator(mode="after")
    def _devices_need_ddp(self) -> Self:
        if self.devices > 1 and self.strategy != "ddp":
            raise ValueError(
                f"trainer.devices={self.devices} needs trainer.strategy='ddp' "
                f"(got '{self.strategy}'); allowed strategies: 'auto' (one device), 'ddp'"
            )
        return self


class TelemetryConfig(_Section):
    """Gradient-flow telemetry, recorded in every run (`training/telemetry.py`)."""

    enabled: bool = Field(
        True, description="Record gradient norms, the gradient map, W_hh spectra and a verdict."
    )
    every_n_steps: int = Field(
        50, ge=1, description="Optimizer steps between gradient maps and per-weight grad norms."
    )
    probe_size: int = Field(
        64, ge=1, description="Training windows of the current batch the gradient map uses."
    )
    vanishing_ratio: float = Field(
        1e-3,
        gt=0,
        lt=1,
        description="Verdict vanishing: median dL/dh_1 / dL/dh_T of bottom or top layer below.",
    )
    exploding_ratio: float = Field(
        1e3,
        gt=1,
        description="Verdict exploding: that ratio above this, or a non-finite loss.",
    )


class RegistryConfig(_Section):
    """MLflow experiment, registered model and alias."""

    experiment: str = Field("stackcast", min_length=1, description="MLflow experiment name.")
    model_name: str = Field("stackcast", min_length=1, description="Registered model name.")
    alias: str = Field("champion", min_length=1, description="Alias moved on improvement.")
    metric: SelectionMetric = Field("val/owa", description="Lower is better; decides the alias.")


class TrainConfig(_Section):
    """Everything one training run needs."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)

    def flat(self) -> dict[str, Any]:
        """The config as `section.key -> value`, for MLflow params."""
        return {
            f"{section}.{key}": value
            for section, values in self.model_dump(mode="json").items()
            for key, value in values.items()
        }


def _apply_override(tree: dict[str, Any], assignment: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"override '{assignment}' is not of the form section.key=value")
    *parents, leaf = key.strip().split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{key}': '{part}' is a value, not a section")
        node = child
    node[leaf] = yaml.safe_load(raw)  # "64" -> 64, "null" -> None, "lstm" -> "lstm"


def load_tree(path: Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """A YAML config (default: configs/m4_hourly.yaml) plus `section.key=value` overrides.

    The tree is not validated yet: values may still be `auto` (see `training/auto.py`).

    Raises:
        ConfigError: the file is not a mapping, or an override is malformed.
    """
    tree = yaml.safe_load((path or DEFAULT_CONFIG).read_text()) or {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    for assignment in overrides or []:
        _apply_override(tree, assignment)
    return tree


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config, apply `section.key=value` overrides, and validate every key.

    Raises:
        pydantic.ValidationError: naming each unknown or invalid key and the allowed values.
        ConfigError: for a malformed override, or a value `auto` (only `stackcast train`,
            which reads the data first, resolves those: `training/auto.py`).
    """
    tree = load_tree(path, overrides)
    autos = [
        f"{section}.{key}"
        for section, values in tree.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if value == "auto" and f"{section}.{key}" != "data.freq"  # freq: inferred on load
    ]
    if autos:
        raise ConfigError(f"{', '.join(autos)}: 'auto' is resolved from the data by `train`")
    return TrainConfig.model_validate(tree)


def config_model_names() -> set[str]:
    """Names of the config's pydantic models: a `ValidationError` titled so is a config error."""
    return {TrainConfig.__name__} | {
        field.annotation.__name__
        for field in TrainConfig.model_fields.values()
        if isinstance(field.annotation, type)
    }
