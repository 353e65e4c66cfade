"""Request and response pipes stay whole when a process using them is killed at any moment."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from queue import Empty
from typing import Any

import pytest
from litserve.utils import LitAPIStatus, LoopResponseType

from service.packets import PACKET_BYTES, Spool
from service.request_queue import RequestPipes
from service.transport import PipeTransport

SPAWN = multiprocessing.get_context("spawn")
BIG = 3 << 20  # 3 MiB: a spooled body, three times what the pipe holds


def _request(n: int, points: int) -> tuple[Any, ...]:
    return (0, f"uid-{n}", 0.0, [float(n)] * points)


def _whole(item: tuple[Any, ...]) -> bool:
    n = float(item[1].removeprefix("uid-"))
    return all(value == n for value in item[3])


def _read_forever(pipes: RequestPipes, ready: Any) -> None:
    ready.set()
    while True:
        pipes.get(timeout=30)


def test_a_reader_killed_mid_stream_leaves_every_other_request_whole(tmp_path: Any) -> None:
    # With one lock per pipe held while reading (and unpickling), this hung: the dead reader
    # kept the lock, and nothing was ever read from that pipe again.
    pipes = RequestPipes.create(1, spool=Spool(tmp_path))
    sent = 0
    for _ in range(3):  # a reader busy with big and small requests, killed mid-way
        ready = SPAWN.Event()
        victim = SPAWN.Process(target=_read_forever, args=(pipes, ready))
        victim.start()
        assert ready.wait(timeout=60)
        for _ in range(6):
            pipes.put(_request(sent, 300_000 if sent % 2 else 10))  # 2.4 MB pickled, or tiny
            sent += 1
        time.sleep(0.01)
        os.kill(int(victim.pid or 0), signal.SIGKILL)
        victim.join(timeout=10)
    last = _request(sent, 10)
    pipes.put(last)
    got = []
    while True:  # the survivor (this process) reads what is left, never stuck, never garbage
        try:
            got.append(pipes.get(timeout=5))
        except Empty:
            break
    assert got and got[-1] == last
    assert all(_whole(item) for item in got)
    numbers = [int(item[1].removeprefix("uid-")) for item in got]
    assert numbers == sorted(set(numbers))  # in order, none twice


def _answer_forever(transport: PipeTransport, size: int) -> None:
    n = 0
    while True:
        transport.send((f"w-{n}", (b"r" * size, LitAPIStatus.OK, LoopResponseType.REGULAR, 0)), 0)
        n += 1


def test_a_writer_killed_mid_response_leaves_the_response_pipe_readable(tmp_path: Any) -> None:
    transport = PipeTransport.create(1, spool=Spool(tmp_path))
    received: list[Any] = []

    async def http_server() -> None:
        victims = [
            SPAWN.Process(target=_answer_forever, args=(transport, size))
            for size in (100, PACKET_BYTES, BIG)
        ]
        for victim in victims:
            victim.start()
        deadline = time.monotonic() + 30
        while len(received) < 30 and time.monotonic() < deadline:
            message = await transport.areceive(0)
            if message is not None:
                received.append(message)
        for victim in victims:  # killed while writing, most likely
            os.kill(int(victim.pid or 0), signal.SIGKILL)
            victim.join(timeout=10)
        transport.send(("after", (b"ok", LitAPIStatus.OK, LoopResponseType.REGULAR, 1)), 0)
        while True:
            message = await transport.areceive(0)
            if message is not None:
                received.append(message)
                if message[0] == "after":
                    return

    asyncio.run(asyncio.wait_for(http_server(), timeout=60))
    assert received[-1][0] == "after"
    for uid, (body, status, _, _) in received[:-1]:
        assert uid.startswith("w-") and status == LitAPIStatus.OK
        assert set(body) == {ord("r")}  # whole bodies only: nothing torn, nothing mixed


def test_a_message_that_fits_one_packet_is_not_spooled(tmp_path: Any) -> None:
    spool = Spool(tmp_path)
    small, big = spool.pack(_request(1, 10)), spool.pack(_request(2, PACKET_BYTES // 8))
    assert len(small) <= PACKET_BYTES and len(big) <= PACKET_BYTES
    assert len(list(tmp_path.iterdir())) == 1  # only the big one has a file
    assert spool.unpack(small) == _request(1, 10)
    assert spool.unpack(big) == _request(2, PACKET_BYTES // 8)
    assert list(tmp_path.iterdir()) == []  # read once, then deleted
    with pytest.raises(ValueError, match="not a message packet"):
        spool.unpack(b"Xgarbage")
