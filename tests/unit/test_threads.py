"""`trainer.threads`: each training process gets its share of the cores, never none."""

from __future__ import annotations

import sys

import pytest

from stackcast.training.threads import is_stackcast_train, plan_threads, resolve_threads


@pytest.mark.parametrize(
    ("cores", "processes", "threads"),
    [
        (16, 1, 16),  # alone: every core
        (16, 2, 8),  # two runs side by side, or DDP on 2 CPU processes
        (16, 3, 5),  # rounded down: 15 threads on 16 cores, not 18
        (2, 4, 1),  # more processes than cores: one thread each, not zero
        (1, 1, 1),
    ],
)
def test_auto_divides_the_cores_among_the_training_processes(
    cores: int, processes: int, threads: int
) -> None:
    plan = resolve_threads("auto", cores=cores, processes=processes)
    assert plan.threads == threads
    assert plan.describe().startswith(f"torch threads: {threads} (auto: {cores} cores / ")


def test_an_explicit_count_wins_whatever_the_machine() -> None:
    plan = resolve_threads(3, cores=64, processes=10)
    assert plan.threads == 3
    assert plan.describe() == "torch threads: 3 (trainer.threads)"
    assert plan_threads(5, own_processes=4).threads == 5


def test_auto_counts_this_trainings_own_ddp_processes() -> None:
    # This test process is no `stackcast train`, so others are counted the same in both plans.
    alone, ddp = plan_threads("auto", own_processes=1), plan_threads("auto", own_processes=2)
    assert ddp.processes == alone.processes + 1
    assert ddp.threads == max(1, alone.cores // ddp.processes)


@pytest.mark.parametrize(
    "cmdline",
    [
        ["/repo/.venv/bin/python", "/repo/.venv/bin/stackcast", "train", "--set", "a=1"],
        ["/repo/.venv/bin/stackcast", "--verbose", "train", "--resume"],
        [sys.executable, "-m", "stackcast", "train"],
        [sys.executable, "-m", "stackcast.__main__", "train"],  # a DDP replica of the above
        [sys.executable, "/repo/stackcast/__main__.py", "train"],
    ],
)
def test_a_stackcast_train_is_recognised_in_every_form_it_runs_in(cmdline: list[str]) -> None:
    assert is_stackcast_train(cmdline)


@pytest.mark.parametrize(
    "cmdline",
    [
        ["/repo/.venv/bin/stackcast", "serve", "--model-uri", "models:/m@champion"],
        ["/repo/.venv/bin/stackcast", "evaluate"],
        [sys.executable, "-m", "pytest", "tests/e2e/test_cli.py", "-k", "train"],
        ["vim", "train.py"],
        [],
    ],
)
def test_other_processes_are_not_counted(cmdline: list[str]) -> None:
    assert not is_stackcast_train(cmdline)
