"""The supervisor: a dead worker is reported, marked not ready, forgotten and replaced."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
from litserve.utils import WorkerSetupStatus

from stackcast.service import supervisor as supervision
from stackcast.service.inflight import WorkerGone
from stackcast.service.supervisor import WorkerSupervisor

SPAWN = multiprocessing.get_context("spawn")


def _live(seconds: float) -> None:
    time.sleep(seconds)


def _worker(seconds: float) -> BaseProcess:
    process = SPAWN.Process(target=_live, args=(seconds,))
    process.start()
    return process


@dataclass
class FakeAPI:
    api_path: str = "/predict"


@dataclass
class FakeServer:
    """The parts of a running `ForecastServer` the supervisor touches."""

    inference_workers: list[BaseProcess]
    worker_life: float = 600.0  # how long each replacement lives
    workers_setup_status: dict[str, str] = field(default_factory=dict)
    gone: list[WorkerGone] = field(default_factory=list)
    launched: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.litapi_connector = type("Connector", (), {"lit_apis": [FakeAPI()]})()
        self._transport = self
        for index in range(len(self.inference_workers)):
            self.workers_setup_status[f"predict_{index}"] = WorkerSetupStatus.READY

    def worker_gone(self, gone: WorkerGone) -> None:
        # At this moment /health must already answer 503.
        assert self.workers_setup_status[f"predict_{gone.worker_id}"] != WorkerSetupStatus.READY
        self.gone.append(gone)

    def launch_single_inference_worker(self, lit_api: Any, worker_id: int) -> BaseProcess:
        self.launched.append(time.monotonic())
        return _worker(self.worker_life)


def _wait(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_killed_worker_is_replaced_at_once_and_its_state_dropped(tmp_path: Path) -> None:
    server = FakeServer([_worker(600), _worker(600)])
    victim = server.inference_workers[1]
    state = tmp_path / f"worker-{victim.pid}.json"
    state.write_text("{}")
    supervisor = WorkerSupervisor(server, tmp_path)
    supervisor.start()
    try:
        killed = time.monotonic()
        os.kill(int(victim.pid or 0), signal.SIGKILL)
        _wait(lambda: server.inference_workers[1] is not victim)
        assert server.launched[0] - killed < 1.0  # woken by the death, not a 2 s poll
        assert server.gone == [WorkerGone(1, int(victim.pid or 0))]
        assert server.workers_setup_status["predict_1"] == WorkerSetupStatus.STARTING
        assert server.workers_setup_status["predict_0"] == WorkerSetupStatus.READY
        assert not state.exists()
        assert server.inference_workers[1].is_alive()
    finally:
        supervisor.stop()
        for worker in server.inference_workers:
            worker.kill()


def test_a_worker_that_keeps_dying_young_is_restarted_ever_more_slowly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:  # the supervisor's pauses are recorded, not waited
        if seconds >= 1:
            slept.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(supervision.time, "sleep", sleep)
    server = FakeServer([_worker(0)], worker_life=0)  # every replacement dies at once too
    supervisor = WorkerSupervisor(server, tmp_path)
    supervisor.start()
    try:
        _wait(lambda: len(server.launched) >= 5)
    finally:
        supervisor.stop()
    assert slept[:4] == [2.0, 4.0, 8.0, 16.0]  # the first young death is restarted at once
    assert len(server.gone) >= 5
