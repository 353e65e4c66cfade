"""Requests from HTTP servers to inference workers: one pipe per HTTP server, no feeder thread.

`multiprocessing.Queue.put` hands each request to a feeder thread that pickles and writes it.
In an HTTP server that thread fights the event loop for the GIL on every request; a prototype
that wrote from the event loop itself used about 7% less CPU per request in the HTTP process
(see BENCHMARKS.md). Each HTTP server owns its pipe, so it writes without a lock: non-blocking, and
what the pipe cannot take yet waits in a buffer that the event loop flushes when the pipe
drains (a slow worker delays requests, never the event loop). Inference workers read whichever
pipe has a request, one reader per pipe at a time.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pickle
import struct
import time
from contextlib import suppress
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext
from multiprocessing.synchronize import Lock
from queue import Empty
from typing import Any

HEADER = struct.Struct("!Q")  # payload length, then the pickled request
PIPE_BYTES = 1 << 20  # Linux's default cap for unprivileged pipes (fs.pipe-max-size)


def widen(connection: Connection) -> None:
    """Give a pipe 1 MiB of buffer instead of 64 KiB, where the OS allows.

    With 64 KiB, one request of 32 series (~60 KB pickled) or a few many-series responses
    fill the pipe, and the writer then waits for the reader chunk by chunk: the worker stalls
    while the HTTP server parses JSON and the other way round. Measured at 64 concurrent
    requests of 32 series: the worker busy 0.64 of a core and 70 requests/s with 64 KiB, 0.97
    and 130 requests/s with 1 MiB.
    """
    with suppress(AttributeError, OSError):  # not Linux, or above the system's cap
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def locked_pipes(
    count: int, context: SpawnContext
) -> tuple[list[Connection], list[Connection], list[Lock]]:
    """`count` one-way 1 MiB pipes (read ends, write ends) and a lock for each."""
    pipes = [context.Pipe(duplex=False) for _ in range(count)]
    for _, writer in pipes:
        widen(writer)
    locks = [context.Lock() for _ in range(count)]
    return [r for r, _ in pipes], [w for _, w in pipes], locks


class _PipeWriter:
    """The write end of one pipe in the HTTP server that owns it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = bytearray()  # accepted but not yet in the pipe, in order
        os.set_blocking(fd, False)

    def send(self, message: bytes) -> None:
        if self.pending:  # keep the order: behind what is already waiting
            self.pending += message
            return
        try:
            written = os.write(self.fd, message)
        except BlockingIOError:
            written = 0
        if written == len(message):
            return
        self.pending += message[written:]
        try:
            asyncio.get_running_loop().add_writer(self.fd, self._flush)
        except RuntimeError:  # no event loop (not an HTTP server): just wait for the pipe
            os.set_blocking(self.fd, True)
            os.write(self.fd, bytes(self.pending))
            self.pending.clear()
            os.set_blocking(self.fd, False)

    def _flush(self) -> None:
        try:
            written = os.write(self.fd, self.pending)
        except BlockingIOError:
            return
        del self.pending[:written]
        if not self.pending:
            asyncio.get_running_loop().remove_writer(self.fd)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("request pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class RequestPipes:
    """A drop-in for the request queue LitServe shares between HTTP servers and workers.

    `put` routes each request `(http_server_id, uid, timestamp, payload)` to its HTTP server's
    pipe; `get`/`get_nowait` (the workers) return the next request from any pipe.
    """

    def __init__(
        self, readers: list[Connection], writers: list[Connection], locks: list[Lock]
    ) -> None:
        self._readers, self._writers, self._locks = readers, writers, locks
        self._writer: tuple[int, int, _PipeWriter] | None = None  # (pid, server id, writer)
        self._next = 0  # where the next get starts looking: no pipe is starved

    @classmethod
    def create(cls, producers: int, context: SpawnContext) -> RequestPipes:
        """One pipe (and one reader lock) per HTTP server process."""
        return cls(*locked_pipes(producers, context))

    def __reduce__(self) -> tuple[Any, ...]:
        return RequestPipes, (self._readers, self._writers, self._locks)

    # --- HTTP server side ---------------------------------------------------------------------

    def put(self, item: tuple[Any, ...], block: bool = True, timeout: float | None = None) -> None:
        """Queue a request on this HTTP server's pipe; never blocks the event loop."""
        server = int(item[0])
        if self._writer is None or self._writer[:2] != (os.getpid(), server):
            self._writer = (os.getpid(), server, _PipeWriter(self._writers[server].fileno()))
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer[2].send(HEADER.pack(len(data)) + data)

    # --- inference worker side ----------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The next request from any pipe; `Empty` after `timeout` seconds (or at once)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        index_of = {reader.fileno(): i for i, reader in enumerate(self._readers)}
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            fds = wait(list(index_of), left if block else 0)
            ready = sorted(index_of[fd] for fd in fds if isinstance(fd, int))
            for index in self._in_turn(ready):
                item = self._read(index, wait_for_lock=False)
                if item is not None:
                    return item
            if ready:  # another worker is reading those pipes: queue behind it once
                item = self._read(ready[0], wait_for_lock=True)
                if item is not None:
                    return item
            if not block or (deadline is not None and time.monotonic() >= deadline):
                raise Empty

    def get_nowait(self) -> Any:
        """A request that is already waiting, else `Empty`."""
        return self.get(block=False)

    def _in_turn(self, ready: list[int]) -> list[int]:
        start = self._next % len(self._readers)
        self._next += 1
        return [i for i in ready if i >= start] + [i for i in ready if i < start]

    def _read(self, index: int, wait_for_lock: bool) -> Any:
        lock, reader = self._locks[index], self._readers[index]
        if not lock.acquire(block=wait_for_lock, timeout=0.1 if wait_for_lock else None):
            return None
        try:
            if not reader.poll(0):  # another worker took it meanwhile
                return None
            fd = reader.fileno()
            (size,) = HEADER.unpack(_read_exactly(fd, HEADER.size))
            return pickle.loads(_read_exactly(fd, size))
        finally:
            lock.release()
