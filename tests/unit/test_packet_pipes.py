"""Request and response pipes stay whole when a process using them is killed at any moment."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from queue import Empty
from typing import Any

import pytest
from litserve.utils import LitAPIStatus, LoopResponseType

from stackcast.service.inflight import WorkerGone
from stackcast.service.packets import PACKET_BYTES, Assembler, pieces, read_packet
from stackcast.service.request_queue import RequestPipes
from stackcast.service.transport import PipeTransport

SPAWN = multiprocessing.get_context("spawn")
BIG = 3 << 20  # 3 MiB: three times what the pipe holds


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
    pipes = RequestPipes.create(1, lock_dir=tmp_path)
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
    writer = threading.Thread(target=pipes.put, args=(last,))  # the pipe may be full
    writer.start()
    got = []
    while True:  # the survivor (this process) reads what is left, never stuck, never garbage
        try:
            got.append(pipes.get(timeout=5))
        except Empty:
            break
    writer.join(timeout=10)
    assert got and got[-1] == last
    assert all(_whole(item) for item in got)
    numbers = [int(item[1].removeprefix("uid-")) for item in got]
    assert numbers == sorted(set(numbers))  # in order, none twice


def _hold_the_lock(pipes: RequestPipes, holding: Any) -> None:
    with pipes._lock(0, wait=True):
        holding.set()
        time.sleep(600)


def test_a_reader_killed_holding_the_lock_does_not_lock_the_others_out(tmp_path: Any) -> None:
    pipes = RequestPipes.create(1, lock_dir=tmp_path)
    holding = SPAWN.Event()
    victim = SPAWN.Process(target=_hold_the_lock, args=(pipes, holding))
    victim.start()
    assert holding.wait(timeout=60)
    pipes.put(_request(1, 10))
    with pytest.raises(Empty):  # locked out while the holder lives...
        pipes.get_nowait()
    os.kill(int(victim.pid or 0), signal.SIGKILL)
    victim.join(timeout=10)
    assert pipes.get(timeout=5) == _request(1, 10)  # ...and not a moment after it died


def _answer_forever(transport: PipeTransport, size: int) -> None:
    n = 0
    while True:
        transport.send((f"w-{n}", (b"r" * size, LitAPIStatus.OK, LoopResponseType.REGULAR, 0)), 0)
        n += 1


def test_a_writer_killed_mid_response_leaves_the_response_pipe_readable() -> None:
    transport = PipeTransport.create(1)
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
        after = ("after", (b"ok", LitAPIStatus.OK, LoopResponseType.REGULAR, 1))

        def supervisor() -> None:  # in a thread: the pipe may be full until we read again
            for victim in victims:
                transport.worker_gone(WorkerGone(0, int(victim.pid or 0)))
            transport.send(after, 0)

        threading.Thread(target=supervisor).start()
        while True:
            message = await transport.areceive(0)
            if message is not None:
                received.append(message)
                if message[0] == "after":
                    return

    asyncio.run(asyncio.wait_for(http_server(), timeout=60))
    assert received[-1][0] == "after"
    assert transport._assembler._parts == {}  # the dead writers' unfinished pieces: dropped
    for uid, (body, status, _, _) in received[:-1]:
        assert uid.startswith("w-") and status == LitAPIStatus.OK
        assert set(body) == {ord("r")}  # whole bodies only: nothing torn, nothing mixed


def test_pieces_left_by_a_reader_that_died_mid_request_are_dropped(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pipes = RequestPipes.create(1, lock_dir=tmp_path)
    big, small = _request(0, 2000), _request(1, 10)  # 2000 points: 5 pieces
    pipes.put(big)
    pipes.put(small)
    assert read_packet(pipes._readers[0].fileno()) is not None  # a reader takes one piece, dies
    with caplog.at_level(logging.WARNING, logger="stackcast.service.request_queue"):
        assert pipes.get(timeout=1) == small
    assert "dropped 4 pieces of a request whose reader died" in caplog.text
    pipes.put(big)
    assert pipes.get(timeout=1) == big  # and the pipe goes on whole


def test_pieces_of_interleaved_big_responses_are_joined_and_a_dead_writers_dropped() -> None:
    first = ("a", b"x" * (3 * PACKET_BYTES))
    second = ("b", b"y" * (2 * PACKET_BYTES))
    a, b = pieces(first), pieces(second)
    assert len(a) == 4 and len(b) == 3 and all(len(p) <= PACKET_BYTES for p in a + b)
    assembler = Assembler()
    done = [assembler.feed(p) for p in (a[0], b[0], a[1], b[1], a[2], b[2], a[3])]
    assert [message for complete, message in done if complete] == [second, first]
    assert assembler.feed(a[0]) == (False, None)  # a writer dies after one piece...
    assert assembler.forget(os.getpid()) == 1  # ...and its death is reported
    assert assembler.feed(pieces("small")[0]) == (True, "small")
