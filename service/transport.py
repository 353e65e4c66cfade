"""Responses from inference workers to HTTP servers: one pipe per HTTP server, read on its loop.

LitServe's queue transport reads each response with `asyncio.to_thread(queue.get)`: a thread
hop per response on the HTTP server. Here the event loop watches the pipe's file descriptor
for as long as the server runs, and drains everything that arrived at once.
"""

from __future__ import annotations

import asyncio
import pickle
from collections import deque
from contextlib import suppress
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.synchronize import Lock
from typing import Any

from litserve.transport.base import MessageTransport

from service.request_queue import locked_pipes

WAIT_SECONDS = 1.0  # LitServe's reader loop treats None as "nothing yet" and asks again


class PipeTransport(MessageTransport):  # type: ignore[misc]
    """`send` from any inference worker; `areceive` by the one HTTP server owning the pipe."""

    def __init__(
        self, readers: list[Connection], writers: list[Connection], locks: list[Lock]
    ) -> None:
        self._readers, self._writers, self._locks = readers, writers, locks
        self._pending: deque[Any] = deque()
        self._arrived: asyncio.Event | None = None  # set by the loop's reader callback
        self._closed = False

    @classmethod
    def create(cls, consumers: int, context: SpawnContext) -> PipeTransport:
        """One pipe (and one writer lock) per HTTP server process."""
        return cls(*locked_pipes(consumers, context))

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
            if self._arrived is None:
                self._watch(self._readers[consumer_id])
            assert self._arrived is not None
            self._arrived.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(WAIT_SECONDS):
                    await self._arrived.wait()
        return self._pending.popleft() if self._pending else None

    def _watch(self, reader: Connection) -> None:
        arrived = self._arrived = asyncio.Event()

        def drain() -> None:
            while reader.poll():
                self._pending.append(pickle.loads(reader.recv_bytes()))
            arrived.set()

        asyncio.get_running_loop().add_reader(reader.fileno(), drain)

    def close(self, send_sentinel: bool = True) -> None:
        """Stop receiving (LitServe's shutdown calls this)."""
        self._closed = True

    def __reduce__(self) -> tuple[Any, ...]:
        return PipeTransport, (self._readers, self._writers, self._locks)
