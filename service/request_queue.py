"""Requests from HTTP servers to inference workers: one packet pipe per HTTP server, no lock.

`multiprocessing.Queue.put` hands each request to a feeder thread that pickles and writes it.
In an HTTP server that thread fights the event loop for the GIL on every request; a prototype
that wrote from the event loop itself used about 7% less CPU per request in the HTTP process
(see BENCHMARKS.md). Each HTTP server owns its pipe and writes it without blocking: what the pipe
cannot take yet waits in a buffer that the event loop flushes when the pipe drains (a slow
worker delays requests, never the event loop). Inference workers take whichever pipe has a
request. Every request is one packet (see `service.packets`), so workers need no lock between
them, and a worker killed at any moment leaves the pipes whole for the others.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext
from queue import Empty
from typing import Any

from service.inflight import InFlight
from service.packets import Spool, packet_pipes, read_packet


class _PipeWriter:
    """The write end of one pipe in the HTTP server that owns it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: deque[bytes] = deque()  # packets accepted but not yet in the pipe, in order
        os.set_blocking(fd, False)

    def send(self, packet: bytes) -> None:
        if not self.pending and self._write(packet):
            return
        self.pending.append(packet)  # keep the order: behind what is already waiting
        if len(self.pending) > 1:
            return  # the flush is already scheduled
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
        spool: Spool,
        in_flight: InFlight | None = None,
    ) -> None:
        self._readers, self._writers, self._spool = readers, writers, spool
        self.in_flight = in_flight  # the HTTP server's record of requests handed over
        self._writer: tuple[int, int, _PipeWriter] | None = None  # (pid, server id, writer)
        self._next = 0  # where the next get starts looking: no pipe is starved

    @classmethod
    def create(
        cls,
        producers: int,
        context: SpawnContext | None = None,
        spool: Spool | None = None,
        in_flight: InFlight | None = None,
    ) -> RequestPipes:
        """One pipe per HTTP server process.

        Args:
            producers: how many HTTP server processes put requests.
            context: unused (the pipes need nothing from the workers' start method); accepted
                so this reads like the `manager.Queue()` it replaces.
            spool: where requests too big for one packet wait (default: a temporary directory).
            in_flight: told of every request handed to the workers.
        """
        return cls(*packet_pipes(producers), spool or Spool.temporary(), in_flight)

    def __reduce__(self) -> tuple[Any, ...]:
        # Workers get the pipes and the spool; the in-flight record stays in the HTTP servers.
        return RequestPipes, (self._readers, self._writers, self._spool)

    # --- HTTP server side ---------------------------------------------------------------------

    def put(self, item: tuple[Any, ...], block: bool = True, timeout: float | None = None) -> None:
        """Queue a request on this HTTP server's pipe; never blocks the event loop."""
        server = int(item[0])
        if self._writer is None or self._writer[:2] != (os.getpid(), server):
            self._writer = (os.getpid(), server, _PipeWriter(self._writers[server].fileno()))
        if self.in_flight is not None:
            self.in_flight.handed_over(item[1])
        self._writer[2].send(self._spool.pack(item))

    # --- inference worker side ----------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The next request from any pipe; `Empty` after `timeout` seconds (or at once)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fds = [reader.fileno() for reader in self._readers]
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = {fd for fd in wait(fds, left if block else 0) if isinstance(fd, int)}
            for fd in self._in_turn(fds, ready):
                packet = read_packet(fd)
                if packet is not None:  # else another worker took it first
                    return self._spool.unpack(packet)
            if not block or (deadline is not None and time.monotonic() >= deadline):
                raise Empty

    def get_nowait(self) -> Any:
        """A request that is already waiting, else `Empty`."""
        return self.get(block=False)

    def _in_turn(self, fds: list[int], ready: set[int]) -> list[int]:
        start, count = self._next % len(fds), len(fds)
        self._next += 1
        return [fds[(start + i) % count] for i in range(count) if fds[(start + i) % count] in ready]
