"""How many torch threads a training process takes: `trainer.threads`.

torch's default is one intra-op thread per core in every process, so two trainings side by side
(or the N processes of CPU DDP) oversubscribe the cores and each runs several times slower
per step than with its share. `auto` gives each training process its share of the cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil


@dataclass(frozen=True)
class ThreadPlan:
    """The threads of this training process, and what they were worked out from."""

    threads: int
    cores: int  # cores this process may run on
    processes: int  # training processes sharing them (0: `threads` was set explicitly)

    def describe(self) -> str:
        """One line for the CLI: the number and, for `auto`, the rule's inputs."""
        if not self.processes:
            return f"torch threads: {self.threads} (trainer.threads)"
        plural = "es" if self.processes > 1 else ""
        return (
            f"torch threads: {self.threads} (auto: {self.cores} cores / {self.processes} "
            f"training process{plural})"
        )


def resolve_threads(setting: int | Literal["auto"], *, cores: int, processes: int) -> ThreadPlan:
    """`setting` as a thread count: explicit, or `cores // processes`, at least 1."""
    if setting != "auto":
        return ThreadPlan(setting, cores, 0)
    return ThreadPlan(max(1, cores // max(1, processes)), cores, max(1, processes))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's or taskset's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def is_stackcast_train(cmdline: list[str]) -> bool:
    """Whether a command line runs `stackcast train` (console script or `python -m stackcast`).

    Also the forms Lightning's DDP launcher re-runs it in: the script's absolute path, or
    `-m stackcast.__main__`.
    """
    for i, part in enumerate(cmdline):
        by_script = Path(part).name == "stackcast" or part.endswith("stackcast/__main__.py")
        by_module = i > 0 and cmdline[i - 1] == "-m" and part in ("stackcast", "stackcast.__main__")
        if by_script or by_module:
            verbs = [arg for arg in cmdline[i + 1 :] if not arg.startswith("-")]
            return bool(verbs) and verbs[0] == "train"
    return False


def other_trainings() -> int:
    """Live `stackcast train` processes on this machine outside this process's own training.

    Its own: the outermost `stackcast train` among this process and its ancestors (rank 0,
    for a DDP replica), and all that one's descendants (its replicas).
    """
    me = psutil.Process()
    root = me
    for ancestor in me.parents():
        if is_stackcast_train(_cmdline(ancestor)):
            root = ancestor
    own = {root.pid} | {child.pid for child in _children(root)}
    return sum(
        1
        for process in psutil.process_iter(["pid", "cmdline"])
        if process.info["pid"] not in own and is_stackcast_train(process.info["cmdline"] or [])
    )


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return list(process.cmdline())
    except psutil.Error:  # gone, or not ours to read
        return []


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return list(process.children(recursive=True))
    except psutil.Error:
        return []


def plan_threads(setting: int | Literal["auto"], own_processes: int) -> ThreadPlan:
    """This process's threads: `setting`, or (`auto`) its share of the cores.

    Shared by `own_processes` (this training's: `trainer.devices` under DDP, else 1) and every
    other `stackcast train` process running on this machine now.
    """
    if setting != "auto":
        return resolve_threads(setting, cores=usable_cores(), processes=0)
    processes = own_processes + other_trainings()
    return resolve_threads(setting, cores=usable_cores(), processes=processes)
