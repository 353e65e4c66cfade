"""Gradient-flow telemetry: where gradients vanish or explode, per layer and per time step.

`GradientTelemetry` is a Lightning callback, on in every run. Every `every_n_steps` optimizer
steps it records

- the gradient norm of each recurrent weight (`grad/l{k}/weight_ih`, `grad/l{k}/weight_hh`)
  and of the head (`grad/head`), before clipping (the module logs the total before and after
  clipping and the fraction of steps clipping fired, every step);
- the gradient map: on a probe of the current batch, the model runs one time step at a time
  and `||dL/dh_t||` (mean over the probe) is measured for every layer l and step t, a
  (layers, steps) matrix; its decay ratios `||dL/dh_1|| / ||dL/dh_T||` for the bottom and
  top layers are logged as `grad_flow/bottom_decay_ratio` and `grad_flow/top_decay_ratio`.

Every epoch it logs the spectral radius and largest singular value of each layer's W_hh
(max over gate blocks; `whh/l{k}/...`). Every step it checks the loss: a NaN or infinite
loss stops training with `NonFiniteLossError`, naming the step, the last gradient norms and
the checkpoint that is kept; at once on the CPU, one step later on a GPU, whose loss is read
without waiting for the device (`training/loss_watch.py`), and always before validation.

At the end, `verdict` reads the maps: `exploding` if the median decay ratio of the bottom or
top layer is above `exploding_ratio` (gradients grow going back in time) or the loss went
non-finite; `vanishing` if it is below `vanishing_ratio`; `healthy` otherwise.

Resuming: the maps travel in Lightning checkpoints (`state_dict`), so a resumed run's verdict
covers the whole run. Only `fit` restores them: Lightning restores every callback's state from
the checkpoint any `validate`/`test` loads, and `train` scores the best checkpoint after `fit`,
which would rewind the map (and the verdict) to the best epoch and drop the epochs after it.
The per-step metrics are held until the end of the epoch, just before its checkpoint is saved:
an epoch cut short by an interruption logs nothing, and its replay after `--resume` logs its
steps once. Under DDP only rank 0 records (every rank holds the same averaged gradients; the
map probes rank 0's batch).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.optim import Optimizer

from stackcast.models import init_report
from stackcast.training.loss_watch import LossWatch, StepLoss
from stackcast.training.module import ForecastModule


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; training stopped at that step."""


@dataclass(frozen=True)
class GradientMap:
    """`||dL/dh_t||` for every layer (bottom first) and recurrent step, at one optimizer step."""

    step: int
    norms: list[list[float]]  # (layers, steps)

    @staticmethod
    def _ratio(row: list[float]) -> float:
        if row[-1] > 0:
            return row[0] / row[-1]
        return 0.0 if row[0] == 0 else float("inf")  # all zero: nothing flows (dead ReLUs)

    @property
    def bottom_decay_ratio(self) -> float:
        """||dL/dh_1|| / ||dL/dh_T|| of the bottom layer: < 1 vanishing, > 1 growing."""
        return self._ratio(self.norms[0])

    @property
    def top_decay_ratio(self) -> float:
        """The same for the top layer, the one the head reads."""
        return self._ratio(self.norms[-1])


@dataclass(frozen=True)
class Verdict:
    """A run's gradient health and the numbers that led to it."""

    label: str  # "healthy", "vanishing" or "exploding"
    reason: str
    bottom_decay_ratio: float | None
    top_decay_ratio: float | None
    vanishing_ratio: float  # the thresholds it was judged with
    exploding_ratio: float


def gradient_map(
    module: ForecastModule, batch: tuple[torch.Tensor, ...], size: int
) -> list[list[float]]:
    """`||dL/dh_t||` per layer and step on the first `size` windows of `batch`.

    The loss is the training loss; the parameters' `.grad` are left alone (the gradients are
    taken with respect to the hidden states only), and the random state is restored, so the
    training run is the same with or without telemetry.
    """
    probe = tuple(t[:size] for t in batch)
    devices = [probe[0].device] if probe[0].device.type == "cuda" else []
    states: list[list[torch.Tensor]] = []
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        loss, _ = module.model_step(probe, states=states)
        nodes = [h for layer in states for h in layer]
        grads = torch.autograd.grad(loss, nodes, allow_unused=True)
    norms = torch.stack(
        [
            torch.zeros((), device=h.device) if g is None else g.norm(dim=1).mean()
            for g, h in zip(grads, nodes, strict=True)
        ]
    )  # (layers * steps,)
    rows: list[list[float]] = norms.reshape(len(states), -1).tolist()
    return rows


def weight_grad_norms(module: ForecastModule) -> dict[str, float]:
    """Gradient norm of each recurrent weight and of the head, as metric names."""
    out: dict[str, torch.Tensor] = {}
    for k, layer in enumerate(module.model.layers):
        for kind in ("ih", "hh"):
            grad = layer.get_parameter(f"weight_{kind}_l0").grad
            if grad is not None:
                out[f"grad/l{k}/weight_{kind}"] = torch.linalg.vector_norm(grad)
    if module.model.head.weight.grad is not None:
        out["grad/head"] = torch.linalg.vector_norm(module.model.head.weight.grad)
    values = torch.stack(list(out.values())).tolist() if out else []  # one host sync
    return dict(zip(out, values, strict=True))


def judge(
    maps: list[GradientMap],
    nonfinite: str | None,
    vanishing_ratio: float,
    exploding_ratio: float,
) -> Verdict:
    """The verdict from a run's gradient maps (median over the run) and its loss history."""
    bottom = statistics.median(m.bottom_decay_ratio for m in maps) if maps else None
    top = statistics.median(m.top_decay_ratio for m in maps) if maps else None
    numbers = (
        f"median dL/dh_1 / dL/dh_T over {len(maps)} maps (train steps {maps[0].step} to "
        f"{maps[-1].step}): bottom {bottom:.3g}, top {top:.3g}"
        if bottom is not None and top is not None
        else "no gradient map recorded"
    )
    thresholds = (vanishing_ratio, exploding_ratio)
    if nonfinite is not None:
        return Verdict("exploding", f"{nonfinite}; {numbers}", bottom, top, *thresholds)
    if bottom is None or top is None:
        return Verdict("healthy", numbers, None, None, *thresholds)
    if max(bottom, top) > exploding_ratio:
        return Verdict("exploding", f"{numbers} > {exploding_ratio:g}", bottom, top, *thresholds)
    if min(bottom, top) < vanishing_ratio:
        return Verdict("vanishing", f"{numbers} < {vanishing_ratio:g}", bottom, top, *thresholds)
    within = f"{numbers}, within [{vanishing_ratio:g}, {exploding_ratio:g}]"
    return Verdict("healthy", within, bottom, top, *thresholds)


@dataclass(eq=False)  # hashed by identity, as Lightning expects of callbacks
class GradientTelemetry(Callback):
    """Record gradient flow during `fit`; see the module docstring for what and when."""

    every_n_steps: int = 50
    probe_size: int = 64
    vanishing_ratio: float = 1e-3
    exploding_ratio: float = 1e3
    maps: list[GradientMap] = field(default_factory=list)
    last_weight_norms: dict[str, float] = field(default_factory=dict)
    last_weight_norms_step: int | None = None
    nonfinite: str | None = None
    _step: int = field(default=0, init=False)
    _pending: list[tuple[int, dict[str, float]]] = field(default_factory=list, init=False)
    _losses: LossWatch = field(default_factory=LossWatch, init=False)
    _stage: str | None = field(default=None, init=False)  # the Trainer entry point running

    def __post_init__(self) -> None:
        if self.every_n_steps < 1 or self.probe_size < 1:
            raise ValueError("every_n_steps and probe_size must be >= 1")

    def _due(self, trainer: L.Trainer) -> bool:
        return trainer.is_global_zero and trainer.global_step % self.every_n_steps == 0

    def _log(self, trainer: L.Trainer, metrics: dict[str, float]) -> None:
        self._pending.append((trainer.global_step, metrics))

    def _flush(self, trainer: L.Trainer) -> None:
        for step, metrics in self._pending:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
        self._pending.clear()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the maps so far and the last weight norms."""
        return {
            "maps": [{"step": m.step, "norms": m.norms} for m in self.maps],
            "last_weight_norms": dict(self.last_weight_norms),
            "last_weight_norms_step": self.last_weight_norms_step,
            "nonfinite": self.nonfinite,
        }

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Note the entry point: Lightning calls this before it restores a checkpoint."""
        self._stage = stage

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from a checkpoint's state (`fit(ckpt_path=...)`, i.e. `--resume`).

        Outside `fit` (validating or testing a checkpoint) the run's record is kept as it is.
        """
        if self._stage != TrainerFn.FITTING:
            return
        self.maps = [GradientMap(m["step"], m["norms"]) for m in state_dict["maps"]]
        self.last_weight_norms = dict(state_dict["last_weight_norms"])
        self.last_weight_norms_step = state_dict["last_weight_norms_step"]
        self.nonfinite = state_dict["nonfinite"]

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Measure the gradient map on this batch, every `every_n_steps` steps."""
        self._step = trainer.global_step  # the optimizer step this batch makes
        if not self._due(trainer):
            return
        assert isinstance(pl_module, ForecastModule)
        recorded = GradientMap(trainer.global_step, gradient_map(pl_module, batch, self.probe_size))
        self.maps.append(recorded)
        metrics = {
            "grad_flow/bottom_decay_ratio": recorded.bottom_decay_ratio,
            "grad_flow/top_decay_ratio": recorded.top_decay_ratio,
        }
        for k, row in enumerate(recorded.norms):
            metrics[f"grad_flow/l{k}/last_step"] = row[-1]
            metrics[f"grad_flow/l{k}/first_step"] = row[0]
        self._log(trainer, metrics)

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer
    ) -> None:
        """Per-weight gradient norms (before clipping), every `every_n_steps` steps."""
        if not self._due(trainer):
            return
        assert isinstance(pl_module, ForecastModule)
        self.last_weight_norms = weight_grad_norms(pl_module)
        self.last_weight_norms_step = trainer.global_step
        self._log(trainer, self.last_weight_norms)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Stop on a NaN or infinite loss (on every rank, if any rank's loss is)."""
        known = self._losses.push_output(outputs, self._step, trainer.current_epoch, batch_idx)
        self._stop_if_nonfinite(trainer, known)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The last step's loss is read before its weights are validated (and checkpointed)."""
        self._stop_if_nonfinite(trainer, self._losses.settle())

    def _stop_if_nonfinite(self, trainer: L.Trainer, known: StepLoss | None) -> None:
        bad = known is not None and not math.isfinite(known.value)
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        if known is None or not bad:  # another rank's loss went non-finite
            self.nonfinite = f"a non-finite loss on another rank at step {self._step}"
            raise NonFiniteLossError(f"training stopped: {self.nonfinite}")
        self.nonfinite = f"loss {known.value} at step {known.step}"
        norms = ", ".join(f"{k}={v:.3g}" for k, v in self.last_weight_norms.items())
        checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "") or "none yet"
        raise NonFiniteLossError(
            f"training stopped: loss is {known.value} at step {known.step} (epoch "
            f"{known.epoch}, batch {known.batch_idx}); last gradient norms (step "
            f"{self.last_weight_norms_step}): {norms or 'none recorded'}; kept checkpoint: "
            f"{checkpoint}"
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Spectral radius and largest singular value of every W_hh."""
        if not trainer.is_global_zero:
            return
        assert isinstance(pl_module, ForecastModule)
        report = init_report(pl_module.model)
        metrics = {}
        for layer in report["layers"]:
            metrics[f"whh/l{layer['layer']}/spectral_radius"] = layer["spectral_radius"]
            metrics[f"whh/l{layer['layer']}/max_singular_value"] = layer["max_singular_value"]
        self._log(trainer, metrics)
        self._flush(trainer)  # the epoch's metrics; Lightning saves the checkpoint after this hook

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log what is still held (training that ended within an epoch); read the last loss."""
        self._flush(trainer)
        self._stop_if_nonfinite(trainer, self._losses.settle())

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """Keep a failed run's metrics; drop an interrupted epoch's (its replay logs them)."""
        if isinstance(exception, SIGTERMException):
            self._pending.clear()
        else:
            self._flush(trainer)

    def verdict(self) -> Verdict:
        """The run's gradient health so far."""
        return judge(self.maps, self.nonfinite, self.vanishing_ratio, self.exploding_ratio)
