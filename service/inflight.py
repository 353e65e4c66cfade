"""An HTTP server's record of the requests it handed to the workers and is still waiting on.

LitServe 0.2.19's HTTP handler waits for a request's answer without any time limit, and when
an inference worker dies its monitor fails the dead worker's requests in the main process's
response buffer, which is empty: the requests wait in the HTTP servers' own buffers (forked
copies). So a request taken by a worker that then died would wait forever. Each HTTP server
keeps this record instead, fed by its own request pipe (handed over) and its response pipe
(started by worker N, answered), and answers for the workers when they cannot:

- a worker died (`WorkerGone` arrives on the response pipe): each request it had started
  gets a 503 at once;
- no answer within `request_timeout` (a request lost with a worker in the instant between
  taking it and saying so, or a model too slow): a 504.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from litserve.utils import LitAPIStatus, LoopResponseType

Message = tuple[str, tuple[Any, LitAPIStatus, LoopResponseType, int | None]]


@dataclass(frozen=True)
class WorkerGone:
    """Sent by the supervisor to every HTTP server when inference worker `worker_id` died."""

    worker_id: int
    pid: int


class InFlight:
    """Requests handed to the workers and not answered yet, oldest first."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout  # seconds until a 504; None: no limit
        self._since: dict[str, float] = {}  # uid -> when it was handed over, in that order
        self._worker: dict[str, int] = {}  # uid -> the worker that started it

    def __len__(self) -> int:
        return len(self._since)

    def handed_over(self, uid: str) -> None:
        """A request was put on the request pipe."""
        self._since[uid] = time.monotonic()

    def observe(self, message: Message) -> None:
        """A worker's message: `START` names the worker, anything else answers the request."""
        uid, (_, status, _, worker_id) = message
        if status == LitAPIStatus.START:
            if uid in self._since and worker_id is not None:
                self._worker[uid] = int(worker_id)
            return
        self._since.pop(uid, None)
        self._worker.pop(uid, None)

    def worker_gone(self, gone: WorkerGone) -> list[Message]:
        """503 answers for every request the dead worker had started."""
        lost = [uid for uid, worker in self._worker.items() if worker == gone.worker_id]
        detail = (
            f"the inference worker serving this request (pid {gone.pid}) died; "
            "it is being restarted, retry the request"
        )
        return [self._fail(uid, 503, detail, gone.worker_id) for uid in lost]

    def overdue(self, now: float | None = None) -> list[Message]:
        """504 answers for requests handed over more than `timeout` seconds ago."""
        if self.timeout is None:
            return []
        now = time.monotonic() if now is None else now
        late = []
        for uid, since in self._since.items():  # oldest first: stop at the first in time
            if now - since <= self.timeout:
                break
            late.append(uid)
        detail = f"no answer from the model within {self.timeout:g} s (request timeout)"
        return [self._fail(uid, 504, detail, self._worker.get(uid)) for uid in late]

    def _fail(self, uid: str, code: int, detail: str, worker_id: int | None) -> Message:
        self._since.pop(uid, None)
        self._worker.pop(uid, None)
        error = HTTPException(code, detail)
        return uid, (error, LitAPIStatus.ERROR, LoopResponseType.REGULAR, worker_id)
