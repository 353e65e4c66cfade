"""Training's commands (train, lab, evaluate); `stackcast.cli` adds the service's."""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from stackcast.training.config import (
    AUTO_CONFIG,
    DEFAULT_CONFIG,
    Choice,
    TrainConfig,
    load_config,
    load_tree,
)
from stackcast.training.lab_output import default_out_dir
from stackcast.training.lab_plan import TASKS, BudgetName, TaskName, budget_help

if TYPE_CHECKING:
    from stackcast.training.resume import ResumePoint

app = typer.Typer()  # no callback: `stackcast.cli` merges these commands into its own app


# Third-party chatter that says nothing about the user's run.
_QUIET = (
    ".*LeafSpec.*",  # torch pytree deprecation inside Lightning
    ".*does not have many workers.*",  # windows are pre-built tensors; workers would only copy
    ".*exists and is not empty.*",  # a run's checkpoint directory, on --resume
)


def configure_output(verbose: bool) -> None:
    """Debug logging with `verbose`; else silence third-party chatter about nothing the user did."""
    if verbose:
        logging.basicConfig(level=logging.DEBUG)
        return
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    # No "Downloading artifacts" bars on stderr when a command loads a model (read per call).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


@app.command()
def train(
    run_id: Annotated[
        str | None,
        typer.Argument(
            help="With --resume: the run to continue (default: the latest interrupted run of "
            "the config's experiment)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML config (default configs/m4_hourly.yaml); keys: see the README."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one key, e.g. --set model.hidden_size=64 (repeat)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue an interrupted run (killed, or stopped by SIGTERM) from its last "
            "checkpoint, into the same MLflow run, with the config it logged."
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Train on this long-format file (unique_id, ds, y); without --config, every "
            "other choice is made from the data (printed, and logged to MLflow)."
        ),
    ] = None,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Steps to forecast (= --set model.horizon=H).")
    ] = None,
    promote: Annotated[
        bool,
        typer.Option(
            help="Move the registry alias to the new version even if it is not better, or the "
            "alias holder was validated on other data, horizon or windows."
        ),
    ] = False,
) -> None:
    """Train a model, log the run to MLflow and register it; print run id, version and alias."""
    from stackcast.training.auto import resolve_from_data
    from stackcast.training.progress import EpochLines
    from stackcast.training.train import TrainingInterruptedError, is_ddp_replica
    from stackcast.training.train import train as run_training  # heavy imports only when used

    if run_id is not None and not resume:
        raise typer.BadParameter("a RUN_ID is only read with --resume", param_hint="RUN_ID")
    shortcuts = ["data.source=file", f"data.path={data}"] if data is not None else []
    shortcuts += [f"model.horizon={horizon}"] if horizon is not None else []
    try:
        point = None
        choices: list[Choice] = []
        stated = config is not None or bool(set_) or bool(shortcuts)
        base = config or (AUTO_CONFIG if data is not None else DEFAULT_CONFIG)
        if resume and not stated:
            train_config = load_config(DEFAULT_CONFIG)  # names the experiment to look in
        else:  # `auto` keys resolved as the run resolved them, to compare on --resume
            train_config, choices = resolve_from_data(load_tree(base, [*shortcuts, *(set_ or [])]))
        if resume:
            choices = []  # the run logged its own
            if not is_ddp_replica():  # replicas join the run rank 0 resumes
                point = _resume_point(run_id, train_config, stated=stated)
                train_config = point.config
        for choice in choices:
            typer.echo(f"auto: {choice.line()}")
        if train_config.trainer.progress_bar and not sys.stdout.isatty():
            # A bar redrawn into a log file is noise there: one line per epoch instead.
            trainer = train_config.trainer.model_copy(update={"progress_bar": False})
            train_config = train_config.model_copy(update={"trainer": trainer})
        lines = []
        if not train_config.trainer.progress_bar:
            lines.append(EpochLines(typer.echo, train_config.registry.metric))
        result = run_training(train_config, lines, resume=point, choices=choices, promote=promote)
    except TrainingInterruptedError as error:
        typer.echo(f"interrupted: {error}", err=True)
        raise typer.Exit(128 + signal.SIGTERM) from None  # as if SIGTERM had ended it: 143
    if result is None:
        return  # a DDP replica: rank 0 reports
    reg = result.registration
    typer.echo(f"run_id: {result.run_id}")
    typer.echo(f"registered: {reg.name} version {reg.version}")
    typer.echo(result.threads.describe())
    typer.echo(
        f"{reg.metric}: {reg.value:.4f} (epochs trained: {result.epochs}; registered weights "
        f"from epoch {result.best_epoch}, the best)"
    )
    ours = (result.metrics["val/smape"], result.metrics["val/mase"])
    typer.echo(f"{f'validation ({result.val_windows} windows)':<28}{'sMAPE':>8}{'MASE':>8}")
    for name, (smape_value, mase_value) in {"stackcast": ours, **result.baselines}.items():
        typer.echo(f"  {name:<26}{smape_value:>8.3f}{mase_value:>8.3f}")
    if reg.alias_moved:
        before = f" from version {reg.previous_champion}" if reg.previous_champion else ""
        typer.echo(f"alias '{reg.alias}' moved to version {reg.version}{before} ({reg.reason})")
    else:
        hint = "" if reg.comparable else "; --promote moves it anyway"
        typer.echo(
            f"alias '{reg.alias}' stays on version {reg.previous_champion} ({reg.reason}{hint})"
        )


def _resume_point(run_id: str | None, config: TrainConfig, stated: bool) -> ResumePoint:
    """The run to resume; with a config `stated` on the command line, it must be the run's."""
    from stackcast.training.resume import ResumeError, config_conflicts, find_resume_point
    from stackcast.training.tracking import configure_tracking

    configure_tracking()
    point = find_resume_point(run_id, config)
    conflicts = config_conflicts(config, point.config) if stated else []
    if conflicts:
        raise ResumeError(
            f"run {point.run_id} is resumed with the config it logged, and the command's "
            f"differs: {'; '.join(conflicts)}. Drop --config/--set (or make them match)."
        )
    where = f"after epoch {point.epochs_done}" if point.checkpoint else "from the start"
    typer.echo(f"resuming run {point.run_id} {where} of {point.config.trainer.max_epochs}")
    return point


@app.command(epilog=budget_help())
def lab(
    budget: Annotated[
        BudgetName, typer.Option(help="How much to run (each budget is listed below).")
    ] = "small",
    task: Annotated[
        TaskName, typer.Option(help="adding (long-range dependency), m4 (M4 Hourly) or all.")
    ] = "all",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Table and figures go to OUT/BUDGET (also logged to MLflow); default: "
            f"{default_out_dir()}, the user's cache directory, outside any checkout.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace report files tracked by git (e.g. --out docs/lab)."),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of every child run.")] = 0,
) -> None:
    """Test the claims about vanishing and exploding gradients: cells x inits x clipping x depth."""
    from stackcast.training.lab import Outcome, run_lab

    def progress(n: int, total: int, outcome: Outcome) -> None:
        result = f"score {outcome.score:.3g}" if outcome.score is not None else "no score"
        if outcome.diverged:
            result = f"diverged ({outcome.divergence})"
        typer.echo(
            f"[{n}/{total}] {outcome.spec.name}: {outcome.verdict}, {result}, "
            f"{outcome.seconds_per_epoch:.2f} s/epoch"
        )

    result = run_lab(budget, TASKS[task], out, seed, progress, overwrite=overwrite)
    diverged = sum(o.diverged for o in result.outcomes)
    typer.echo(
        f"parent run: {result.parent_run_id} ({len(result.outcomes)} children, {diverged} diverged)"
    )
    typer.echo(f"table and figures: {result.out_dir}")


@app.command()
def evaluate(
    model: Annotated[
        str, typer.Option(help="Model URI, e.g. models:/stackcast@champion.")
    ] = "models:/stackcast@champion",
    train_file: Annotated[
        Path | None,
        typer.Option(
            "--train",
            help="Long-format history (default: the bundled M4 subset the model was trained on).",
        ),
    ] = None,
    test_file: Annotated[
        Path | None, typer.Option("--test", help="Long-format test values following --train.")
    ] = None,
    seasonality: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Seasonal period m for MASE/sNaive/Naive2 (default: the model's data contract: "
            "the M4 subset's m, 24 Hourly and 1 Weekly, or with --train/--test the m the model "
            "was validated with); another value needs --force.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            help="Score with a --seasonality, or on files of another frequency, that disagree "
            "with the model's data contract."
        ),
    ] = False,
) -> None:
    """Score a registered model on the test part; print sMAPE / MASE / OWA beside baselines."""
    from stackcast.training.evaluate import evaluate as run_evaluation

    if (train_file is None) != (test_file is None):
        raise typer.BadParameter(
            "give both --train and --test, or neither (the model's bundled M4 data)",
            param_hint="--train/--test",
        )
    table = run_evaluation(
        model,
        train_path=train_file,
        test_path=test_file,
        seasonality=seasonality,
        force=force,
        announce=typer.echo,
    )
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        typer.echo(table.to_string())
