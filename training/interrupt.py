"""SIGTERM during `train`: stop after the current batch, on every rank at the same step.

One process: Lightning's own handler notes SIGTERM and stops after the current batch with
`SIGTERMException`. Before `fit`, `sigterm_noted` keeps the note for `train` to act on; after
`fit`, the run is only scored and registered (seconds), and is let finish.

DDP: Lightning's handler runs a collective inside the signal handler, which deadlocks when
another rank is inside the step's gradient all-reduce at that moment (Lightning issue #20806).
`SynchronizedStop` replaces it for the length of training with a plain note, and decides at
the end of every step, with one all-reduce that every rank joins, whether any rank was
signalled; then all raise `SIGTERMException` at that same step.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException


@contextmanager
def sigterm_noted() -> Iterator[threading.Event]:
    """Note SIGTERM in the returned event instead of dying of it (main thread only)."""
    received = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield received  # signals are delivered to the main thread; nothing to catch here
        return

    def note(signum: int, frame: FrameType | None) -> None:
        received.set()

    previous = signal.signal(signal.SIGTERM, note)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass(eq=False)  # hashed by identity, as Lightning expects of callbacks
class SynchronizedStop(Callback):
    """Under DDP: stop every rank at the same step after any rank receives SIGTERM."""

    received: threading.Event = field(default_factory=threading.Event)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Take SIGTERM over from Lightning's handler (it restores its own at teardown)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda signum, frame: self.received.set())

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Every rank asks every rank, once per step: was any of us signalled?"""
        if trainer.strategy.reduce_boolean_decision(self.received.is_set(), all=False):
            raise SIGTERMException
