"""An HTTP server's record of the requests it handed to the workers and is still waiting on.

LitServe 0.2.19's HTTP handler waits for a request's answer without any time limit, and when
an inference worker dies its monitor fails the dead worker's requests in the main process's
response buffer, which is empty: the requests wait in the HTTP servers' own buffers (forked
copies). So a request taken by a worker that then died would wait forever. Each HTTP server
keeps this record instead, fed by its own request pipe (handed over) and its response pipe
(taken by worker N, answered), and answers for the workers when they cannot:

- a worker died (`WorkerGone` arrives on the response pipe): each request it had taken gets a
  503 at once;
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
class Taken:
    """Sent by inference worker `worker_id`: it took these requests off the request pipe.

    LitServe's own protocol sends a `START` message per request; one message for all the
    requests a worker took in one go costs the HTTP server one wake-up instead of dozens.
    """

    worker_id: int
    uids: tuple[str, ...]


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
        self._worker: dict[str, int] = {}  # uid -> the worker that took it

    def __len__(self) -> int:
        return len(self._since)

    def handed_over(self, uid: str) -> None:
        """A request was put on the request pipe."""
        self._since[uid] = time.monotonic()

    def taken(self, taken: Taken) -> None:
        """A worker says which requests it holds."""
        for uid in taken.uids:
            if uid in self._since:  # not answered for it already
                self._worker[uid] = taken.worker_id

    def answered(self, message: Message) -> None:
        """A worker's answer (or LitServe `START`, which names the worker) for one request."""
        uid, (_, status, _, worker_id) = message
        if status == LitAPIStatus.START:
            if worker_id is not None:
                self.taken(Taken(int(worker_id), (uid,)))
            return
        self._since.pop(uid, None)
        self._worker.pop(uid, None)

    def worker_gone(self, gone: WorkerGone) -> list[Message]:
        """503 answers for every request the dead worker had taken."""
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
