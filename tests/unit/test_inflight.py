"""The HTTP server answers for workers that cannot: a dead worker's requests, overdue requests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from litserve.utils import LitAPIStatus, LoopResponseType

from service.inflight import InFlight, WorkerGone
from service.packets import Spool
from service.request_queue import RequestPipes
from service.transport import PipeTransport

REGULAR = LoopResponseType.REGULAR


def _start(uid: str, worker: int) -> Any:
    return (uid, ((), LitAPIStatus.START, REGULAR, worker))


def _ok(uid: str, worker: int) -> Any:
    return (uid, ({"ok": True}, LitAPIStatus.OK, REGULAR, worker))


def test_a_dead_workers_started_requests_get_503_and_no_others() -> None:
    record = InFlight(timeout=30)
    for uid in ("a", "b", "c", "d"):
        record.handed_over(uid)
    record.observe(_start("a", 0))
    record.observe(_start("b", 1))
    record.observe(_start("c", 0))
    record.observe(_ok("c", 0))  # answered before the worker died
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
    record.observe(_ok("new", 0))
    assert len(record) == 0 and record.overdue(now=new + 60) == []


def test_the_transport_fails_a_dead_workers_requests_as_soon_as_it_is_reported(
    tmp_path: Path,
) -> None:
    spool, record = Spool(tmp_path), InFlight(timeout=30)
    pipes = RequestPipes.create(1, spool=spool, in_flight=record)
    transport = PipeTransport.create(1, spool=spool, in_flight=record)
    worker_side = PipeTransport(transport._readers, transport._writers, spool)  # as pickled

    async def http_server() -> list[Any]:
        pipes.put((0, "mine", 0.0, "payload"))
        pipes.put((0, "other", 0.0, "payload"))
        worker_side.send(_start("mine", 0), 0)
        worker_side.send(_start("other", 1), 0)
        transport.worker_gone(WorkerGone(0, 99))  # the supervisor, in the main process
        received = []
        while len(received) < 3:
            message = await transport.areceive(0)
            if message is not None:
                received.append(message)
        return received

    received = asyncio.run(asyncio.wait_for(http_server(), timeout=10))
    starts, failure = received[:2], received[2]
    assert [m[1][1] for m in starts] == [LitAPIStatus.START] * 2  # passed on to LitServe
    assert failure[0] == "mine" and failure[1][0].status_code == 503
    assert len(record) == 1  # "other" is still being served by worker 1
