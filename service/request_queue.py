"""Requests from HTTP servers to inference workers: one packet pipe per HTTP server.

`multiprocessing.Queue.put` hands each request to a feeder thread that pickles and writes it.
In an HTTP server that thread fights the event loop for the GIL on every request; a prototype
that wrote from the event loop itself used about 7% less CPU per request in the HTTP process
(see BENCHMARKS.md). Each HTTP server owns its pipe and writes it without blocking: what the pipe
cannot take yet waits in a buffer that the event loop flushes when the pipe drains (a slow
worker delays requests, never the event loop). Inference workers take whichever pipe has a
request.

A worker reads one request (its one packet, or all its pieces) while holding the pipe's lock:
an `flock` on a file, which the kernel releases when the holder dies, so a worker killed while
reading cannot leave the pipe locked. Pieces it had not read yet are recognised by the next
reader (they do not start with a first piece) and dropped; see `service.packets`.
"""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext
from pathlib import Path
from queue import Empty
from typing import Any

from stackcast.service.inflight import InFlight
from stackcast.service.packets import join, packet_pipes, piece_header, pieces, read_packet

logger = logging.getLogger(__name__)

PIECE_WAIT = 10.0  # seconds a reader waits for the rest of a request before giving it up


class _PipeWriter:
    """The write end of one pipe in the HTTP server that owns it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: deque[bytes] = deque()  # packets accepted but not yet in the pipe, in order
        os.set_blocking(fd, False)

    def send(self, packets: list[bytes]) -> None:
        waiting = bool(self.pending)
        for packet in packets:
            if self.pending or not self._write(packet):
                self.pending.append(packet)  # keep the order: behind what is already waiting
        if not self.pending or waiting:
            return  # all written, or a flush is already scheduled
        try:
            asyncio.get_running_loop().add_writer(self.fd, self._flush)
        except RuntimeError:  # no event loop (not an HTTP server): just wait for the pipe
            os.set_blocking(self.fd, True)
            while self.pending:
                os.write(self.fd, self.pending.popleft())
            os.set_blocking(self.fd, False)

    def _write(self, packet: bytes) -> bool:
        try:
            os.write(self.fd, packet)  # a packet goes in whole or not at all
        except BlockingIOError:
            return False
        return True

    def _flush(self) -> None:
        while self.pending and self._write(self.pending[0]):
            self.pending.popleft()
        if not self.pending:
            asyncio.get_running_loop().remove_writer(self.fd)


class RequestPipes:
    """A drop-in for the request queue LitServe shares between HTTP servers and workers.

    `put` routes each request `(http_server_id, uid, timestamp, payload)` to its HTTP server's
    pipe; `get`/`get_nowait` (the workers) return the next request from any pipe.
    """

    def __init__(
        self,
        readers: list[Connection],
        writers: list[Connection],
        lock_dir: Path,
        in_flight: InFlight | None = None,
    ) -> None:
        self._readers, self._writers, self.lock_dir = readers, writers, lock_dir
        self.in_flight = in_flight  # the HTTP server's record of requests handed over
        self._writer: tuple[int, int, _PipeWriter] | None = None  # (pid, server id, writer)
        self._locks: tuple[int, list[int]] | None = None  # (pid, one lock file per pipe)
        self._next = 0  # where the next get starts looking: no pipe is starved

    @classmethod
    def create(
        cls,
        producers: int,
        context: SpawnContext | None = None,
        lock_dir: Path | None = None,
        in_flight: InFlight | None = None,
    ) -> RequestPipes:
        """One pipe per HTTP server process.

        Args:
            producers: how many HTTP server processes put requests.
            context: unused (the pipes need nothing from the workers' start method); accepted
                so this reads like the `manager.Queue()` it replaces.
            lock_dir: where the pipes' lock files go (default: a temporary directory).
            in_flight: told of every request handed to the workers.
        """
        if lock_dir is None:
            lock_dir = Path(tempfile.mkdtemp(prefix="stackcast-locks-"))
            atexit.register(shutil.rmtree, lock_dir, ignore_errors=True)
        lock_dir.mkdir(parents=True, exist_ok=True)
        return cls(*packet_pipes(producers), lock_dir, in_flight)

    def __reduce__(self) -> tuple[Any, ...]:
        # Workers get the pipes; the in-flight record stays in the HTTP servers.
        return RequestPipes, (self._readers, self._writers, self.lock_dir)

    # --- HTTP server side ---------------------------------------------------------------------

    def put(self, item: tuple[Any, ...], block: bool = True, timeout: float | None = None) -> None:
        """Queue a request on this HTTP server's pipe; never blocks the event loop."""
        server = int(item[0])
        if self._writer is None or self._writer[:2] != (os.getpid(), server):
            self._writer = (os.getpid(), server, _PipeWriter(self._writers[server].fileno()))
        if self.in_flight is not None:
            self.in_flight.handed_over(item[1])
        self._writer[2].send(pieces(item))

    # --- inference worker side ----------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The next request from any pipe; `Empty` after `timeout` seconds (or at once)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fds = [reader.fileno() for reader in self._readers]
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = {fd for fd in wait(fds, left if block else 0) if isinstance(fd, int)}
            busy = []  # ready, but another worker is reading them
            for index in self._in_turn(fds, ready):
                with self._lock(index, wait=False) as mine:
                    packets = self._take(fds[index]) if mine else None
                if packets:
                    return join(packets)  # unpickled outside the lock
                if not mine:
                    busy.append(index)
            if busy and block:  # queue behind that worker once, rather than spin
                with self._lock(busy[0], wait=True):
                    packets = self._take(fds[busy[0]])
                if packets:
                    return join(packets)
            if not block or (deadline is not None and time.monotonic() >= deadline):
                raise Empty

    def get_nowait(self) -> Any:
        """A request that is already waiting, else `Empty`."""
        return self.get(block=False)

    def _in_turn(self, fds: list[int], ready: set[int]) -> list[int]:
        start, count = self._next % len(fds), len(fds)
        self._next += 1
        order = [(start + i) % count for i in range(count)]
        return [index for index in order if fds[index] in ready]

    @contextmanager
    def _lock(self, index: int, wait: bool) -> Iterator[bool]:
        if self._locks is None or self._locks[0] != os.getpid():  # flock is per open file
            paths = [self.lock_dir / f"requests-{i}.lock" for i in range(len(self._readers))]
            self._locks = (os.getpid(), [os.open(p, os.O_RDWR | os.O_CREAT) for p in paths])
        fd = self._locks[1][index]
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _take(self, fd: int) -> list[bytes] | None:
        """The packets of one whole request from `fd`, or None; the caller holds its lock."""
        dropped = 0
        try:
            while (packet := read_packet(fd)) is not None:
                header = piece_header(packet)
                if header is None:
                    return [packet]
                pid, number, index, count = header
                if index != 0:  # the rest of a request whose reader died
                    dropped += 1
                    continue
                return self._rest(fd, packet, pid, number, count)
            return None
        finally:
            if dropped:
                logger.warning("dropped %d pieces of a request whose reader died", dropped)

    def _rest(self, fd: int, first: bytes, pid: int, number: int, count: int) -> list[bytes] | None:
        parts, deadline = [first], time.monotonic() + PIECE_WAIT
        while len(parts) < count:  # the HTTP server may still be writing them
            packet = read_packet(fd)
            if packet is None:
                if not wait([fd], max(0.0, deadline - time.monotonic())):
                    logger.error("gave up a request: %d of its %d pieces came", len(parts), count)
                    return None
                continue
            if piece_header(packet) != (pid, number, len(parts), count):  # cannot happen
                logger.error("gave up a request: its pieces are interrupted by another message")
                return None
            parts.append(packet)
        return parts
