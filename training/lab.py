"""`stackcast lab`: the textbook claims about vanishing and exploding gradients, tested.

One MLflow parent run per lab, one child run per configuration (`training/lab_plan.py`: the
budgets and what each runs). Two tasks:

- `adding`: the adding problem (`training/adding.py`), a long-range dependency of T steps.
  A grid over cell x init x clipping x depth at one length, and a sweep over lengths T.
- `m4`: M4 Hourly forecasting (a subset of series at the smaller budgets), cell x depth.

Each child trains with gradient telemetry and records its validation score, whether it
diverged (its loss or score left the bound of `training/lab_divergence.py`, or went
non-finite; training stops there), its gradient verdict and decay ratios, and seconds per
epoch. `training/lab_report.py` turns the children into the table and figures, written
outside the repository by default (`training/lab_output.py`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
from lightning.pytorch.loggers import MLFlowLogger

from stackcast.models import ModelConfig, StackedRNNForecaster
from stackcast.training.adding import BASELINE_MSE, AddingDataModule, adding_model_config
from stackcast.training.config import OptimConfig, load_config
from stackcast.training.datamodule import SeriesDataModule
from stackcast.training.gradient_report import log_gradient_report
from stackcast.training.lab_divergence import DIVERGENCE_BOUND, DivergenceWatch, Score
from stackcast.training.lab_output import check_writable, default_out_dir
from stackcast.training.lab_plan import BUDGETS, Budget, Spec, Task, specs
from stackcast.training.m4 import load_m4_hourly
from stackcast.training.module import ForecastModule
from stackcast.training.telemetry import GradientTelemetry, NonFiniteLossError, judge
from stackcast.training.tracking import configure_tracking, experiment_id

LAB_EXPERIMENT = "stackcast-lab"


@dataclass
class Outcome:
    """What one child run measured."""

    spec: Spec
    run_id: str
    val_loss: float | None  # the last validation's; None: never validated, or a NaN loss
    score: float | None  # adding: val MSE / 1/6; m4: val OWA (1 = the baseline, both)
    diverged: bool
    divergence: str  # where it left the bound ("" when it did not)
    peak_ratio: float  # the largest loss / first loss or score seen (inf: non-finite)
    left_bound_at: int | None  # the optimizer step it left the bound at
    verdict: str
    bottom_decay_ratio: float | None
    top_decay_ratio: float | None
    depth_ratio: float | None  # ||dL/dh_T|| bottom / top: attenuation down the stack
    seconds_per_epoch: float
    steps: int

    def row(self) -> dict[str, Any]:
        """Flat record for the table."""
        outcome = {k: v for k, v in asdict(self).items() if k != "spec"}
        return {"name": self.spec.name, **asdict(self.spec), **outcome}


def _adding_score(metrics: Mapping[str, Any]) -> float | None:
    return float(metrics["val/loss"]) / BASELINE_MSE if "val/loss" in metrics else None


def _m4_score(metrics: Mapping[str, Any]) -> float | None:
    return float(metrics["val/owa"]) if "val/owa" in metrics else None


SCORES: dict[Task, Score] = {"adding": _adding_score, "m4": _m4_score}


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
    watch = DivergenceWatch(SCORES[spec.task])
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
            callbacks=[watch, telemetry],  # the watch first: it records a NaN before the raise
            logger=MLFlowLogger(tracking_uri=mlflow.get_tracking_uri(), run_id=run.info.run_id),
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=1,
            num_sanity_val_steps=0,
        )
        start = time.perf_counter()
        nonfinite = False
        try:
            trainer.fit(module, datamodule=dm)
        except NonFiniteLossError:
            nonfinite = True
        seconds = time.perf_counter() - start
        steps_per_epoch = max(1, trainer.num_training_batches)
        epochs_run = max(trainer.global_step / steps_per_epoch, 1e-9)
        excursion = watch.excursion
        divergence = excursion.describe() if excursion is not None else telemetry.nonfinite
        # The verdict follows divergence: a run past the bound exploded, whatever its map says.
        verdict = judge(
            telemetry.maps, divergence, telemetry.vanishing_ratio, telemetry.exploding_ratio
        )
        log_gradient_report(telemetry.maps, verdict, figure=False)
        val_loss = trainer.callback_metrics.get("val/loss")
        outcome = Outcome(
            spec,
            run.info.run_id,
            None if nonfinite or val_loss is None else float(val_loss),
            None if nonfinite else watch.last_score,
            divergence is not None,
            divergence or "",
            watch.peak,
            excursion.step if excursion is not None else None,
            verdict.label,
            verdict.bottom_decay_ratio,
            verdict.top_decay_ratio,
            _median([m.norms[0][-1] / m.norms[-1][-1] for m in telemetry.maps if m.norms[-1][-1]]),
            seconds / epochs_run,
            trainer.global_step,
        )
        mlflow.set_tags(
            {"lab.diverged": str(outcome.diverged).lower(), "lab.divergence": divergence or ""}
        )
        mlflow.log_metrics(
            {
                f"lab/{k}": float(v)
                for k, v in outcome.row().items()
                if isinstance(v, int | float) and not isinstance(v, bool) and k != "length"
            }
            | {"lab/diverged": float(outcome.diverged)}
        )
    return outcome


@dataclass
class LabResult:
    """A finished lab: the parent run, every child's outcome, where the report went."""

    parent_run_id: str
    outcomes: list[Outcome]
    out_dir: Path


def run_lab(
    budget_name: str,
    tasks: tuple[Task, ...] = ("adding", "m4"),
    out_dir: Path | None = None,
    seed: int = 0,
    progress: Callable[[int, int, Outcome], None] | None = None,
    overwrite: bool = False,
) -> LabResult:
    """Run every child of the budget under one parent run; write the report to `out_dir`/BUDGET.

    `out_dir` None: the user's cache directory (`default_out_dir`). A report that would replace
    files tracked by git is refused before anything runs, unless `overwrite`.
    `progress(n, total, outcome)` is called after each child.

    Raises:
        TrackedReportError: the report would overwrite committed files.
    """
    from stackcast.training.lab_report import REPORT_FILES, write_report

    if budget_name not in BUDGETS:
        raise ValueError(f"budget {budget_name!r}: choose one of {sorted(BUDGETS)}")
    budget = BUDGETS[budget_name]
    target = (default_out_dir() if out_dir is None else out_dir) / budget_name
    check_writable(target, REPORT_FILES, overwrite)
    configure_tracking()
    children = list(specs(budget, tasks))
    with mlflow.start_run(
        experiment_id=experiment_id(LAB_EXPERIMENT), run_name=f"lab-{budget_name}"
    ) as parent:
        mlflow.log_params(
            {"budget": budget_name, "tasks": ",".join(tasks), "seed": seed}
            | {"divergence_bound": DIVERGENCE_BOUND}
        )
        mlflow.log_dict(asdict(budget), "budget.json")
        mlflow.set_tag("lab.children", str(len(children)))
        result = LabResult(parent.info.run_id, [], target)
        for n, spec in enumerate(children, start=1):
            outcome = run_child(spec, budget, seed)
            result.outcomes.append(outcome)
            if progress is not None:
                progress(n, len(children), outcome)
        write_report(result.outcomes, target, f"lab --budget {budget_name}")
        mlflow.log_artifacts(str(target), "lab")
    return result
