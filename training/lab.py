"""`stackcast lab`: the textbook claims about vanishing and exploding gradients, tested.

One MLflow parent run per lab, one child run per configuration. Two tasks:

- `adding`: the adding problem (`training/adding.py`), a long-range dependency of T steps.
  A grid over cell x init x clipping x depth at one length, and a sweep over lengths T.
- `m4`: M4 Hourly forecasting (a subset of series at the smaller budgets), cell x depth.

Each child trains with gradient telemetry and records its validation loss, whether it
diverged (a non-finite loss stops it), its gradient verdict and decay ratios, and seconds per
epoch. `training/lab_report.py` turns the children into the table and figures.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import mlflow
from lightning.pytorch.loggers import MLFlowLogger

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.adding import BASELINE_MSE, AddingDataModule, adding_model_config
from stackcast.training.config import OptimConfig, load_config
from stackcast.training.datamodule import SeriesDataModule
from stackcast.training.gradient_report import log_gradient_report
from stackcast.training.m4 import load_m4_hourly
from stackcast.training.module import ForecastModule
from stackcast.training.telemetry import GradientTelemetry, NonFiniteLossError
from stackcast.training.tracking import configure_tracking, experiment_id

Task = Literal["adding", "m4"]
ALL_CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
LAB_EXPERIMENT = "stackcast-lab"
CLIP = 1.0  # the clipping threshold of "clipping on" (norm)


@dataclass(frozen=True)
class Budget:
    """How much of the study to run."""

    cells: tuple[str, ...]
    inits: tuple[str, ...]
    clips: tuple[float | None, ...]
    depths: tuple[int, ...]
    length: int  # T of the adding grid
    lengths: tuple[int, ...]  # the adding length sweep (default init, clipping on, depth 1)
    hidden: int
    train: int  # adding sequences per epoch
    val: int
    epochs: int
    lr: float  # AdamW, for the grid and the lengths
    stress_lrs: tuple[float, ...]  # SGD learning rates of the clipping stress test
    m4_series: int  # 0: no M4 task
    m4_depths: tuple[int, ...]
    m4_epochs: int
    m4_samples: int  # windows per M4 epoch
    telemetry_every: int


BUDGETS: dict[str, Budget] = {
    "tiny": Budget(
        cells=("rnn_tanh", "lstm"),
        inits=("default",),
        clips=(None, CLIP),
        depths=(1, 2),
        length=8,
        lengths=(4, 8),
        hidden=8,
        train=256,
        val=128,
        epochs=2,
        lr=1e-2,
        stress_lrs=(0.5,),
        m4_series=12,
        m4_depths=(1,),
        m4_epochs=1,
        m4_samples=256,
        telemetry_every=2,
    ),
    "small": Budget(
        cells=ALL_CELLS,
        inits=("default", "orthogonal"),
        clips=(None, CLIP),
        depths=(1, 2, 4),
        length=30,
        lengths=(10, 30, 60),
        hidden=32,
        train=1024,
        val=512,
        epochs=6,
        lr=1e-2,
        stress_lrs=(0.2, 0.5),
        m4_series=50,
        m4_depths=(1, 2, 4),
        m4_epochs=2,
        m4_samples=4096,
        telemetry_every=8,
    ),
    "full": Budget(
        cells=ALL_CELLS,
        inits=("default", "xavier_uniform", "he_uniform", "orthogonal", "identity"),
        clips=(None, CLIP),
        depths=(1, 2, 4, 8),
        length=50,
        lengths=(10, 25, 50, 100, 200),
        hidden=64,
        train=8192,
        val=1024,
        epochs=15,
        lr=1e-2,
        stress_lrs=(0.1, 0.2, 0.5, 1.0),
        m4_series=414,
        m4_depths=(1, 2, 4, 8),
        m4_epochs=8,
        m4_samples=16384,
        telemetry_every=32,
    ),
}


@dataclass(frozen=True)
class Spec:
    """One child run's configuration."""

    task: Task
    study: str  # "grid", "lengths", "stress" or "m4": which question the run answers
    cell: str
    init: str
    clip: float | None
    depth: int
    length: int  # adding: T; m4: recurrent steps per window
    optimizer: str = "adamw"
    lr: float | None = None  # None: the budget's

    @property
    def name(self) -> str:
        """Readable child run name."""
        clip = "clip" if self.clip else "noclip"
        name = f"{self.task}-{self.cell}-{self.init}-{clip}-d{self.depth}-T{self.length}"
        return name if self.lr is None else f"{name}-{self.optimizer}{self.lr:g}"


@dataclass
class Outcome:
    """What one child run measured."""

    spec: Spec
    run_id: str
    val_loss: float | None  # None when it diverged
    score: float | None  # adding: val MSE / 1/6; m4: val OWA
    diverged: bool
    verdict: str
    bottom_decay_ratio: float | None
    top_decay_ratio: float | None
    depth_ratio: float | None  # ||dL/dh_T|| bottom / top: attenuation down the stack
    seconds_per_epoch: float
    steps: int

    def row(self) -> dict[str, Any]:
        """Flat record for the table."""
        return {**asdict(self.spec), **{k: v for k, v in asdict(self).items() if k != "spec"}}


def specs(budget: Budget, tasks: tuple[Task, ...]) -> Iterator[Spec]:
    """Every child of the lab, valid combinations only (identity init is for plain RNNs)."""
    seen: set[tuple[Any, ...]] = set()

    def keep(spec: Spec) -> bool:
        key = (spec.task, spec.cell, spec.init, spec.clip, spec.depth, spec.length, spec.lr)
        if key in seen or (spec.init == "identity" and not spec.cell.startswith("rnn_")):
            return False
        seen.add(key)
        return True

    if "adding" in tasks:
        grid = itertools.product(budget.cells, budget.inits, budget.clips, budget.depths)
        for cell, init, clip, depth in grid:
            spec = Spec("adding", "grid", cell, init, clip, depth, budget.length)
            if keep(spec):
                yield spec
        for cell, length in itertools.product(budget.cells, budget.lengths):
            spec = Spec("adding", "lengths", cell, "default", CLIP, 1, length)
            if keep(spec):
                yield spec
        stress = itertools.product(budget.cells, budget.stress_lrs, budget.clips)
        for cell, lr, clip in stress:  # SGD, where nothing bounds an update but clipping
            spec = Spec("adding", "stress", cell, "default", clip, 2, budget.length, "sgd", lr)
            if keep(spec):
                yield spec
    if "m4" in tasks and budget.m4_series:
        base = load_config().model
        steps = base.input_size // base.patch_size
        for cell, depth in itertools.product(budget.cells, budget.m4_depths):
            yield Spec("m4", "m4", cell, base.init, CLIP, depth, steps)


def _m4_data(budget: Budget, model: ModelConfig) -> tuple[SeriesDataModule, Any]:
    split = load_m4_hourly()
    series = dict(list(zip(split.ids, split.train, strict=True))[: budget.m4_series])
    dm = SeriesDataModule(
        series,
        model=model,
        batch_size=256,
        samples_per_epoch=budget.m4_samples,
    )
    return dm, dm.naive2_scores()


def _model_and_data(spec: Spec, budget: Budget, seed: int) -> tuple[ForecastModule, Any, int]:
    """The child's module, datamodule and epochs."""
    if spec.task == "adding":
        model = adding_model_config(
            spec.length,
            cell=spec.cell,
            init=spec.init,
            hidden_size=budget.hidden,
            num_layers=spec.depth,
        )
        dm: Any = AddingDataModule(spec.length, budget.train, budget.val, 64, seed)
        lr = budget.lr if spec.lr is None else spec.lr
        optim = OptimConfig(loss="mse", lr=lr, batch_size=64, optimizer=spec.optimizer)
        return ForecastModule(StackedRNNForecaster(model), optim), dm, budget.epochs
    base = load_config().model  # the default M4 config, with this child's cell and depth
    model = ModelConfig.model_validate(
        {
            **base.model_dump(),
            "cell": spec.cell,
            "num_layers": spec.depth,
            "hidden_size": min(base.hidden_size, 4 * budget.hidden),
            "forget_bias": base.forget_bias if spec.cell == "lstm" else None,
        }
    )
    dm, naive2 = _m4_data(budget, model)
    module = ForecastModule(StackedRNNForecaster(model), OptimConfig(lr=2e-3), val_naive2=naive2)
    return module, dm, budget.m4_epochs


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_child(spec: Spec, budget: Budget, seed: int) -> Outcome:
    """Train one configuration as a nested MLflow run; divergence is an outcome, not an error."""
    L.seed_everything(seed, verbose=False)
    module, dm, epochs = _model_and_data(spec, budget, seed)
    telemetry = GradientTelemetry(every_n_steps=budget.telemetry_every, probe_size=32)
    tags = {f"lab.{k}": str(v) for k, v in asdict(spec).items()}
    parent = mlflow.active_run()  # children live in the parent's experiment
    experiment = parent.info.experiment_id if parent is not None else None
    with mlflow.start_run(
        run_name=spec.name, nested=True, tags=tags, experiment_id=experiment
    ) as run:
        mlflow.log_params({**asdict(spec), **module.model.config.model_dump(mode="json")})
        trainer = L.Trainer(
            max_epochs=epochs,
            gradient_clip_val=spec.clip,
            callbacks=[telemetry],
            logger=MLFlowLogger(tracking_uri=mlflow.get_tracking_uri(), run_id=run.info.run_id),
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=1,
            num_sanity_val_steps=0,
        )
        start = time.perf_counter()
        diverged = False
        try:
            trainer.fit(module, datamodule=dm)
        except NonFiniteLossError:
            diverged = True
        seconds = time.perf_counter() - start
        steps_per_epoch = max(1, trainer.num_training_batches)
        epochs_run = max(trainer.global_step / steps_per_epoch, 1e-9)
        verdict = telemetry.verdict()
        log_gradient_report(telemetry.maps, verdict, figure=False)
        val_loss = None if diverged else float(trainer.callback_metrics["val/loss"])
        score = _score(spec, trainer, val_loss)
        outcome = Outcome(
            spec,
            run.info.run_id,
            val_loss,
            score,
            diverged,
            verdict.label,
            verdict.bottom_decay_ratio,
            verdict.top_decay_ratio,
            _median([m.norms[0][-1] / m.norms[-1][-1] for m in telemetry.maps if m.norms[-1][-1]]),
            seconds / epochs_run,
            trainer.global_step,
        )
        mlflow.set_tag("lab.diverged", str(diverged).lower())
        mlflow.log_metrics(
            {
                f"lab/{k}": float(v)
                for k, v in outcome.row().items()
                if isinstance(v, int | float) and not isinstance(v, bool) and k != "length"
            }
            | {"lab/diverged": float(diverged)}
        )
    return outcome


def _score(spec: Spec, trainer: L.Trainer, val_loss: float | None) -> float | None:
    if val_loss is None:
        return None
    if spec.task == "adding":
        return val_loss / BASELINE_MSE
    owa = trainer.callback_metrics.get("val/owa")
    return None if owa is None else float(owa)


@dataclass
class LabResult:
    """A finished lab: the parent run and every child's outcome."""

    parent_run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    out_dir: Path | None = None


def run_lab(
    budget_name: str,
    tasks: tuple[Task, ...] = ("adding", "m4"),
    out_dir: Path | None = Path("docs/lab"),
    seed: int = 0,
    progress: Callable[[int, int, Outcome], None] | None = None,
) -> LabResult:
    """Run every child of the budget under one parent run; write the report to `out_dir`.

    `progress(n, total, outcome)` is called after each child.
    """
    from stackcast.training.lab_report import write_report

    if budget_name not in BUDGETS:
        raise ValueError(f"budget {budget_name!r}: choose one of {sorted(BUDGETS)}")
    budget = BUDGETS[budget_name]
    configure_tracking()
    children = list(specs(budget, tasks))
    with mlflow.start_run(
        experiment_id=experiment_id(LAB_EXPERIMENT), run_name=f"lab-{budget_name}"
    ) as parent:
        mlflow.log_params({"budget": budget_name, "tasks": ",".join(tasks), "seed": seed})
        mlflow.log_dict(asdict(budget), "budget.json")
        mlflow.set_tag("lab.children", str(len(children)))
        result = LabResult(parent.info.run_id)
        for n, spec in enumerate(children, start=1):
            outcome = run_child(spec, budget, seed)
            result.outcomes.append(outcome)
            if progress is not None:
                progress(n, len(children), outcome)
        if out_dir is not None:
            target = out_dir / budget_name
            write_report(result.outcomes, target, f"lab --budget {budget_name}")
            mlflow.log_artifacts(str(target), "lab")
            result.out_dir = target
    return result
