"""Responses from inference workers to HTTP servers: one packet pipe per HTTP server.

LitServe's queue transport reads each response with `asyncio.to_thread(queue.get)`: a thread
hop per response on the HTTP server. Here the event loop watches the pipe's file descriptor
for as long as the server runs, and drains everything that arrived at once. Responses travel
as packets (see `service.packets`), so workers write without a lock between them, and a worker
killed mid-write leaves at most an unfinished message, dropped when its death is reported.

The HTTP server also answers for the workers when they cannot (see `service.inflight`): for
the requests of a worker the supervisor reports dead, and for requests past their timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from contextlib import suppress
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import Any

from litserve.transport.base import MessageTransport

from stackcast.service.inflight import InFlight, Taken, WorkerGone
from stackcast.service.packets import Assembler, packet_pipes, pieces, read_packet, write_packet

WAIT_SECONDS = 1.0  # LitServe's reader loop treats None as "nothing yet" and asks again
OVERDUE_CHECK_SECONDS = 0.5  # how often the HTTP server looks for requests past their timeout


class PipeTransport(MessageTransport):  # type: ignore[misc]
    """`send` from any inference worker; `areceive` by the one HTTP server owning the pipe."""

    def __init__(
        self,
        readers: list[Connection],
        writers: list[Connection],
        in_flight: InFlight | None = None,
    ) -> None:
        self._readers, self._writers = readers, writers
        self.in_flight = in_flight
        self._assembler = Assembler()
        self._pending: deque[Any] = deque()
        self._arrived: asyncio.Event | None = None  # set by the loop's reader callback
        self._closed = False
        self._checked = 0.0  # when overdue requests were last looked for

    @classmethod
    def create(
        cls,
        consumers: int,
        context: SpawnContext | None = None,
        in_flight: InFlight | None = None,
    ) -> PipeTransport:
        """One pipe per HTTP server process (`context` is unused, as in `RequestPipes`)."""
        return cls(*packet_pipes(consumers), in_flight)

    def send(self, item: Any, consumer_id: int) -> None:
        """Packets the kernel keeps whole; writers need no lock between them."""
        fd = self._writers[consumer_id].fileno()
        for packet in pieces(item):
            write_packet(fd, packet)

    def worker_gone(self, gone: WorkerGone) -> None:
        """Tell every HTTP server that a worker died (the supervisor, in the main process).

        The dead worker's own messages are all in the pipes already, so each HTTP server reads
        this after them, and before anything its replacement sends.
        """
        for consumer_id in range(len(self._writers)):
            self.send(gone, consumer_id)

    async def areceive(
        self, consumer_id: int, timeout: float | None = None, block: bool = True
    ) -> Any:
        """The next response for this HTTP server, or None after a quiet second."""
        if self._closed:
            raise asyncio.CancelledError("transport closed")
        self._answer_overdue()
        if not self._pending:
            if self._arrived is None:
                self._watch(self._readers[consumer_id])
            assert self._arrived is not None
            self._arrived.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(WAIT_SECONDS):
                    await self._arrived.wait()
        return self._pending.popleft() if self._pending else None

    def _answer_overdue(self) -> None:
        now = time.monotonic()
        if self.in_flight is None or now - self._checked < OVERDUE_CHECK_SECONDS:
            return
        self._checked = now
        self._pending.extend(self.in_flight.overdue(now))

    def _watch(self, reader: Connection) -> None:
        arrived = self._arrived = asyncio.Event()
        fd = reader.fileno()

        def drain() -> None:
            while (packet := read_packet(fd)) is not None:
                complete, message = self._assembler.feed(packet)
                if complete:
                    self._receive(message)
            arrived.set()

        asyncio.get_running_loop().add_reader(fd, drain)

    def _receive(self, message: Any) -> None:
        if isinstance(message, Taken):  # for the in-flight record only: LitServe has no use
            if self.in_flight is not None:
                self.in_flight.taken(message)
            return
        if isinstance(message, WorkerGone):
            self._assembler.forget(message.pid)
            if self.in_flight is not None:
                self._pending.extend(self.in_flight.worker_gone(message))
            return
        if self.in_flight is not None:
            self.in_flight.answered(message)
        self._pending.append(message)

    def close(self, send_sentinel: bool = True) -> None:
        """Stop receiving (LitServe's shutdown calls this)."""
        self._closed = True

    def __reduce__(self) -> tuple[Any, ...]:
        # Workers get the pipes; the in-flight record stays in the HTTP servers.
        return PipeTransport, (self._readers, self._writers)
