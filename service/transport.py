"""Responses from inference workers to HTTP servers: one pipe per HTTP server, read on its loop.

LitServe's queue transport reads each response with `asyncio.to_thread(queue.get)`: a thread
hop per response on the HTTP server. Here the pipe's file descriptor is watched by the event
loop itself, and everything that arrived is drained at once.
"""

from __future__ import annotations

import asyncio
import pickle
from collections import deque
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.synchronize import Lock
from typing import Any

from litserve.transport.base import MessageTransport

WAIT_SECONDS = 1.0  # LitServe's reader loop treats None as "nothing yet" and asks again


class PipeTransport(MessageTransport):  # type: ignore[misc]
    """`send` from any inference worker; `areceive` by the one HTTP server owning the pipe."""

    def __init__(
        self, readers: list[Connection], writers: list[Connection], locks: list[Lock]
    ) -> None:
        self._readers, self._writers, self._locks = readers, writers, locks
        self._pending: deque[Any] = deque()
        self._closed = False

    @classmethod
    def create(cls, consumers: int, context: SpawnContext) -> PipeTransport:
        """One pipe (and one writer lock) per HTTP server process."""
        pipes = [context.Pipe(duplex=False) for _ in range(consumers)]
        locks = [context.Lock() for _ in range(consumers)]
        return cls([r for r, _ in pipes], [w for _, w in pipes], locks)

    def send(self, item: Any, consumer_id: int) -> None:
        """Pickle outside the lock; one writer at a time so messages never interleave."""
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        with self._locks[consumer_id]:
            self._writers[consumer_id].send_bytes(data)

    async def areceive(
        self, consumer_id: int, timeout: float | None = None, block: bool = True
    ) -> Any:
        """The next response for this HTTP server, or None after a quiet second."""
        if self._closed:
            raise asyncio.CancelledError("transport closed")
        if not self._pending:
            reader = self._readers[consumer_id]
            if not reader.poll():
                await self._readable(reader)
            while reader.poll():
                self._pending.append(pickle.loads(reader.recv_bytes()))
        return self._pending.popleft() if self._pending else None

    @staticmethod
    async def _readable(reader: Connection) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = reader.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(ready, WAIT_SECONDS)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)

    def close(self, send_sentinel: bool = True) -> None:
        """Stop receiving (LitServe's shutdown calls this)."""
        self._closed = True

    def __reduce__(self) -> tuple[Any, ...]:
        return PipeTransport, (self._readers, self._writers, self._locks)
