"""`RequestPipes`: requests reach the workers whole, in order, without blocking the event loop."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from queue import Empty
from typing import Any

import pytest

from stackcast.service.request_queue import RequestPipes

SPAWN = multiprocessing.get_context("spawn")


def _item(server: int, n: int, payload: Any = None) -> tuple[Any, ...]:
    return (server, f"uid-{n}", time.monotonic(), payload)


def test_items_come_back_whole_and_in_order() -> None:
    pipes = RequestPipes.create(1, SPAWN)
    sent = [_item(0, n, {"history": [float(n)] * 5}) for n in range(20)]
    for item in sent:
        pipes.put(item)
    assert [pipes.get(timeout=1) for _ in sent] == sent


def test_empty_queue_raises_empty_after_the_timeout() -> None:
    pipes = RequestPipes.create(2, SPAWN)
    with pytest.raises(Empty):
        pipes.get_nowait()
    started = time.monotonic()
    with pytest.raises(Empty):
        pipes.get(timeout=0.2)
    assert 0.15 < time.monotonic() - started < 2


def test_every_http_server_pipe_is_read() -> None:
    pipes = RequestPipes.create(3, SPAWN)
    for server in (2, 0, 1, 2):
        pipes.put(_item(server, server))
    got = sorted(pipes.get(timeout=1)[0] for _ in range(4))
    assert got == [0, 1, 2, 2]


def test_a_request_larger_than_the_pipe_does_not_block_the_event_loop() -> None:
    pipes = RequestPipes.create(1, SPAWN)
    big = _item(0, 0, b"x" * (4 << 20))  # 4 MiB: four times what the pipe holds
    small = _item(0, 1, "after")
    received: list[Any] = []
    reader = threading.Thread(target=lambda: received.extend(pipes.get(timeout=10) for _ in "ab"))

    async def http_server() -> None:
        pipes.put(big)  # nobody reads yet: a blocking write would never return
        pipes.put(small)
        reader.start()
        while len(received) < 2:  # the loop flushes the rest as the reader drains the pipe
            await asyncio.sleep(0.01)

    server = threading.Thread(target=lambda: asyncio.run(http_server()), daemon=True)
    server.start()
    server.join(timeout=30)
    assert not server.is_alive(), "put blocked the event loop"
    assert received[0][3] == big[3] and received[1] == small


def _worker(pipes: RequestPipes, results: Any, count: int) -> None:
    for _ in range(count):
        results.put(pipes.get(timeout=10)[1])


def test_spawned_workers_share_the_requests_without_duplicates() -> None:
    pipes = RequestPipes.create(2, SPAWN)
    results = SPAWN.Queue()
    workers = [SPAWN.Process(target=_worker, args=(pipes, results, 10)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for n in range(20):
        pipes.put(_item(n % 2, n, [1.0] * 100))
    got = sorted(results.get(timeout=30) for _ in range(20))
    for worker in workers:
        worker.join(timeout=30)
    assert got == sorted(f"uid-{n}" for n in range(20))
