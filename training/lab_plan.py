"""What `stackcast lab` runs: the budgets, and the child configurations each expands to.

Light on purpose (no Lightning, no MLflow): the CLI reads `BUDGETS` to list them in
`stackcast lab --help`, and that must not wait for the training stack to import.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from stackcast.training.config import load_config

Task = Literal["adding", "m4"]
TASKS: dict[str, tuple[Task, ...]] = {"all": ("adding", "m4"), "adding": ("adding",), "m4": ("m4",)}
ALL_CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
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

    def describe(self) -> str:
        """One line: what the budget runs (for `stackcast lab --help`)."""

        def listed(values: tuple[Any, ...]) -> str:
            return "/".join(str(v) for v in values)

        m4 = (
            f"; M4 Hourly: {self.m4_series} series, depth {listed(self.m4_depths)}, "
            f"{self.m4_epochs} epoch(s)"
            if self.m4_series
            else ""
        )
        return (
            f"adding problem T={self.length}: {listed(self.cells)} x init {listed(self.inits)} x "
            f"clipping off/on x depth {listed(self.depths)}, {self.epochs} epoch(s); "
            f"T sweep {listed(self.lengths)}; SGD stress lr {listed(self.stress_lrs)}{m4}"
        )


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


def count_runs(budget: Budget) -> int:
    """How many child runs the budget makes with every task (as `specs` yields them).

    The M4 study, cells x depths, is counted without reading the M4 config: `--help` works
    wherever the package is installed.
    """
    m4 = len(budget.cells) * len(budget.m4_depths) if budget.m4_series else 0
    return len(list(specs(budget, ("adding",)))) + m4


def budget_help() -> str:
    """Every budget, how many runs and what they are: a paragraph each (`stackcast lab --help`)."""
    return "\n\n".join(
        f"--budget {name}: {count_runs(b)} runs. {b.describe()}." for name, b in BUDGETS.items()
    )


if TYPE_CHECKING:
    BudgetName = str
    TaskName = str
else:  # the CLI's choices, from the one definition of each (Typer reads Literal as choices)
    BudgetName = Literal[tuple(BUDGETS)]
    TaskName = Literal[tuple(TASKS)]
