"""The HTTP server answers for workers that cannot: a dead worker's requests, overdue requests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

import pytest
from fastapi import HTTPException
from litserve.callbacks import CallbackRunner
from litserve.utils import LitAPIStatus, LoopResponseType

from stackcast.service.inflight import InFlight, Taken, WorkerGone
from stackcast.service.loop import ForecastLoop
from stackcast.service.request_queue import RequestPipes
from stackcast.service.transport import PipeTransport

REGULAR = LoopResponseType.REGULAR


def _taken(uid: str, worker: int) -> Taken:
    return Taken(worker, (uid,))


def _ok(uid: str, worker: int) -> Any:
    return (uid, ({"ok": True}, LitAPIStatus.OK, REGULAR, worker))


def test_a_dead_workers_requests_get_503_and_no_others() -> None:
    record = InFlight(timeout=30)
    for uid in ("a", "b", "c", "d"):
        record.handed_over(uid)
    record.taken(Taken(0, ("a", "c")))
    record.taken(_taken("b", 1))
    record.answered(_ok("c", 0))  # answered before the worker died
    failed = record.worker_gone(WorkerGone(worker_id=0, pid=4242))
    assert [uid for uid, _ in failed] == ["a"]
    error, status, _, worker = failed[0][1]
    assert status == LitAPIStatus.ERROR and worker == 0
    assert isinstance(error, HTTPException) and error.status_code == 503
    assert "pid 4242" in str(error.detail) and "died" in str(error.detail)
    assert len(record) == 2  # b (worker 1) and d (still queued) wait on


def test_requests_past_the_timeout_get_504_once_oldest_first() -> None:
    record = InFlight(timeout=10)
    record.handed_over("old")
    time.sleep(0.1)
    record.handed_over("new")
    new = time.monotonic()
    assert record.overdue(now=new + 9.8) == []
    [(uid, (error, status, _, _))] = record.overdue(now=new + 9.95)
    assert uid == "old" and status == LitAPIStatus.ERROR
    assert isinstance(error, HTTPException) and error.status_code == 504
    assert "within 10 s" in str(error.detail)
    assert record.overdue(now=new + 9.95) == []  # answered once
    record.answered(_ok("new", 0))
    assert len(record) == 0 and record.overdue(now=new + 60) == []


def test_the_transport_fails_a_dead_workers_requests_as_soon_as_it_is_reported(
    tmp_path: Path,
) -> None:
    record = InFlight(timeout=30)
    pipes = RequestPipes.create(1, lock_dir=tmp_path, in_flight=record)
    transport = PipeTransport.create(1, in_flight=record)
    worker_side = PipeTransport(transport._readers, transport._writers)  # as a worker gets it

    async def http_server() -> list[Any]:
        pipes.put((0, "mine", 0.0, "payload"))
        pipes.put((0, "other", 0.0, "payload"))
        worker_side.send(_taken("mine", 0), 0)
        worker_side.send(_taken("other", 1), 0)
        transport.worker_gone(WorkerGone(0, 99))  # the supervisor, in the main process
        received = []
        while not received:
            message = await transport.areceive(0)
            if message is not None:
                received.append(message)
        return received

    [failure] = asyncio.run(asyncio.wait_for(http_server(), timeout=10))
    assert failure[0] == "mine" and failure[1][0].status_code == 503
    assert len(record) == 1  # "other" is still being served by worker 1


@dataclass
class Worker:
    """Stands in for the API and the transport of one inference worker."""

    max_batch_size: int = 8
    batch_timeout: float = 0.05
    request_timeout: float = 30.0
    sent: list[tuple[int, Any]] = field(default_factory=list)

    def send(self, item: Any, consumer_id: int) -> None:
        self.sent.append((consumer_id, item))

    def decode_request(self, request: Any) -> Any:
        assert [i for _, i in self.sent if isinstance(i, Taken)], "served before announcing"
        return request

    def batch(self, inputs: list[Any]) -> list[Any]:
        return inputs

    def predict(self, batch: list[Any]) -> list[Any]:
        return batch

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def encode_response(self, output: Any) -> Any:
        return output


def test_the_worker_announces_what_it_took_in_one_message_per_http_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LITSERVE_WORKER_ID", "3")
    queue: Queue[Any] = Queue()
    for n in range(5):
        queue.put((n % 2, f"u{n}", time.monotonic(), n))  # two HTTP servers
    worker, loop = Worker(), ForecastLoop()
    loop._restart_workers = True  # what LitServe sets with restart_workers=True
    assert loop.step(worker, queue, worker, CallbackRunner())
    announced = [(cid, item) for cid, item in worker.sent if isinstance(item, Taken)]
    assert sorted(announced) == [(0, Taken(3, ("u0", "u2", "u4"))), (1, Taken(3, ("u1", "u3")))]
    answers = [item for _, item in worker.sent if not isinstance(item, Taken)]
    assert [a[1][1] for a in answers] == [LitAPIStatus.OK] * 5  # and no START per request
