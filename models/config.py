"""The model's typed contract: it is saved beside the weights and the model is rebuilt from it."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Cell = Literal["lstm", "gru", "rnn_tanh", "rnn_relu"]
InitScheme = Literal[
    "default",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "orthogonal",
    "identity",
]
Scaling = Literal["mean_abs_centred", "mean_abs", "standard", "none"]
Padding = Literal["season", "mask"]

GATES: dict[str, tuple[str, ...]] = {
    # Row blocks of weight_ih / weight_hh, in PyTorch's order.
    "lstm": ("input", "forget", "cell", "output"),
    "gru": ("reset", "update", "new"),
    "rnn_tanh": ("hidden",),
    "rnn_relu": ("hidden",),
}


class ModelConfig(BaseModel):
    """Architecture of a `StackedRNNForecaster`; everything needed to rebuild it from weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cell: Cell = Field("lstm", description="Recurrent cell of every layer.")
    input_size: int = Field(168, ge=2, description="Input window length (time steps seen).")
    horizon: int = Field(48, ge=1, description="Number of future steps predicted at once.")
    patch_size: int = Field(
        1,
        ge=1,
        description="Consecutive points fed per recurrent step (24: one day per step); "
        "input_size must be a multiple of it.",
    )
    hidden_size: int = Field(128, ge=1, description="Width of each recurrent layer.")
    num_layers: int = Field(2, ge=1, description="Stacked layers; layer k's outputs feed k+1.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout between stacked layers.")
    residual: bool = Field(False, description="Add each layer's input to its output (layers >= 2).")
    init: InitScheme = Field("default", description="Named weight initialization scheme.")
    forget_bias: float | None = Field(
        None, description="LSTM forget-gate bias after init (1.0 is common); None keeps the init's."
    )
    scaling: Scaling = Field(
        "mean_abs_centred",
        description="Per-window normalization done inside the model (raw in, raw out): "
        "mean_abs_centred divides by mean |y| and centres the window at 1 (positive windows: "
        "as mean_abs; negative, zero-crossing and constant ones too); mean_abs divides only; "
        "standard centres at the mean and divides by the std; none.",
    )
    season_length: int | None = Field(
        None,
        ge=1,
        description="Add the seasonal-naive forecast (last season repeated); the network "
        "then learns the deviation from it. None: the network forecasts alone.",
    )

    padding: Padding = Field(
        "season",
        description="Histories shorter than input_size: 'mask' pads with NaN and feeds a 0/1 "
        "observed channel beside the values (training and serving); 'season' repeats the "
        "history's own season (no extra input).",
    )

    @model_validator(mode="after")
    def _check_cell_options(self) -> Self:
        if self.forget_bias is not None and self.cell != "lstm":
            raise ValueError(
                f"forget_bias applies to cell='lstm' only, got cell='{self.cell}': "
                "set model.forget_bias=null"
            )
        if self.init == "identity" and self.cell not in ("rnn_relu", "rnn_tanh"):
            raise ValueError(
                f"init='identity' (IRNN) needs cell 'rnn_relu' or 'rnn_tanh', got '{self.cell}'"
            )
        if self.input_size % self.patch_size:
            raise ValueError(
                f"input_size={self.input_size} is not a multiple of patch_size={self.patch_size}"
            )
        if self.season_length is not None and self.season_length > self.input_size:
            raise ValueError(
                f"season_length={self.season_length} exceeds input_size={self.input_size}"
            )
        if self.dropout > 0 and self.num_layers == 1:
            raise ValueError("dropout acts between stacked layers: it needs num_layers >= 2")
        return self
