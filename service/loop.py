"""`ForecastLoop`: the inference worker's loop, LitServe's batched loop made lean.

LitServe 0.2.19's `BatchedLoop` calls `inspect.signature` on every hook for every request
(to see whether the hook takes a `context`), and its collector polls the queue every
millisecond for the whole `batch_timeout` even while idle. Measured in a worker serving
single-series requests, the signature calls alone took 9-14% of the worker's CPU. This loop
runs the same hooks in the same order with LitServe's own response protocol, and:

- blocks on the queue while idle (no polling), and starts the `batch_timeout` clock when the
  first request of a batch arrives, so `batch_timeout` is the longest any request waits for
  company;
- once that time is up, still takes whatever is already queued (up to `max_batch_size`): under
  load, batches grow with the backlog instead of the worker running many small forward passes;
- stops taking requests once their weight (for stackcast: series) reaches `max_batch_weight`,
  so a backlog of many-series requests is served in passes that keep the HTTP servers and the
  worker busy at the same time, instead of one huge pass the HTTP servers wait on;
- answers a request that waited in the queue longer than the server's timeout with a 504, as
  LitServe does;
- tells each HTTP server which requests the worker took (one `Taken` message for all it took
  in one go, instead of LitServe's `START` per request) before it waits for more or starts
  the forward pass: if the worker dies, its requests are failed at once (see
  `service.inflight`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

from fastapi import HTTPException
from litserve.callbacks import EventTypes
from litserve.loops.base import LitLoop
from litserve.utils import LitAPIStatus, LoopResponseType, PickleableHTTPException

from stackcast.service.inflight import Taken

logger = logging.getLogger(__name__)

IDLE_WAIT = 1.0  # seconds a worker blocks on an empty queue before checking again
STOP = (None, None, None, None)  # LitServe's sentinel: the server is shutting down
REGULAR = LoopResponseType.REGULAR


def _one(payload: Any) -> int:
    return 1


class ForecastLoop(LitLoop):  # type: ignore[misc]
    """Collect a batch, run decode/batch/predict/unbatch/encode once, answer every request.

    Args:
        weigh: the weight of one request's payload (stackcast: its number of series).
        max_batch_weight: a batch takes no more requests once its weight reaches this; a
            single heavier request still runs, alone.
    """

    def __init__(self, weigh: Callable[[Any], int] = _one, max_batch_weight: int = 2**31) -> None:
        super().__init__()
        if max_batch_weight < 1:
            raise ValueError(f"max_batch_weight must be >= 1, got {max_batch_weight}")
        self.weigh = weigh
        self.max_batch_weight = max_batch_weight

    def __call__(
        self,
        lit_api: Any,
        device: str,
        worker_id: int,
        request_queue: Any,
        transport: Any,
        workers_setup_status: dict[str, str],
        callback_runner: Any,
    ) -> None:
        """The worker's main loop, until LitServe sends the stop sentinel."""
        while self.step(lit_api, request_queue, transport, callback_runner):
            pass

    def step(self, lit_api: Any, request_queue: Any, transport: Any, callback_runner: Any) -> bool:
        """Serve one batch (or time out idle); False once the server asked workers to stop."""
        items = self._collect(lit_api, request_queue, transport)
        if items is None:
            return False
        pending = []
        for queue_id, uid, timestamp, request in items:
            if lit_api.request_timeout not in (-1, False) and (
                time.monotonic() - timestamp > lit_api.request_timeout
            ):
                logger.error(
                    "request %s waited over %s s in the queue", uid, lit_api.request_timeout
                )
                error = HTTPException(504, "Request timed out")
                self.put_response(transport, queue_id, uid, error, LitAPIStatus.ERROR, REGULAR)
            else:
                pending.append((queue_id, uid, request))
        if pending:
            self._serve(lit_api, pending, transport, callback_runner)
        return True

    def _collect(self, lit_api: Any, request_queue: Any, transport: Any) -> list[Any] | None:
        items: list[Any] = []
        unannounced: list[Any] = []
        deadline = None
        weight = 0
        while len(items) < lit_api.max_batch_size and weight < self.max_batch_weight:
            try:
                item = request_queue.get_nowait()
            except Empty:
                # About to wait: first say which requests this worker holds (see Taken).
                self._announce(transport, unannounced)
                timeout = IDLE_WAIT if deadline is None else deadline - time.monotonic()
                if timeout <= 0:  # time is up and nothing more is queued
                    break
                try:
                    item = request_queue.get(timeout=timeout)
                except Empty:
                    break
            if item == STOP:
                return None
            items.append(item)
            unannounced.append(item)
            weight += self.weigh(item[3])
            if deadline is None:
                deadline = time.monotonic() + lit_api.batch_timeout
        self._announce(transport, unannounced)
        return items

    def _announce(self, transport: Any, items: list[Any]) -> None:
        """Tell each HTTP server which of its requests this worker took, in one message each.

        If the worker dies now, the HTTP servers fail those requests at once (see
        `service.inflight`); LitServe's own `START` per request would cost as many messages.
        """
        if items and self._restart_workers:
            worker_id = int(self.worker_id or 0)
            for queue_id in {item[0] for item in items}:
                uids = tuple(item[1] for item in items if item[0] == queue_id)
                transport.send(Taken(worker_id, uids), consumer_id=queue_id)
        items.clear()

    def _serve(
        self, lit_api: Any, pending: list[Any], transport: Any, callback_runner: Any
    ) -> None:
        queue_ids, uids, requests = zip(*pending, strict=True)
        trigger = callback_runner.trigger_event
        try:
            trigger(EventTypes.BEFORE_DECODE_REQUEST.value, lit_api=lit_api)
            decoded = [lit_api.decode_request(request) for request in requests]
            trigger(EventTypes.AFTER_DECODE_REQUEST.value, lit_api=lit_api)
            batch = lit_api.batch(decoded)
            trigger(EventTypes.BEFORE_PREDICT.value, lit_api=lit_api)
            predictions = lit_api.predict(batch)
            trigger(EventTypes.AFTER_PREDICT.value, lit_api=lit_api)
            outputs = lit_api.unbatch(predictions)
            if len(outputs) != len(requests):
                raise RuntimeError(f"{len(outputs)} outputs for {len(requests)} requests")
            trigger(EventTypes.BEFORE_ENCODE_RESPONSE.value, lit_api=lit_api)
            encoded = [lit_api.encode_response(output) for output in outputs]
            trigger(EventTypes.AFTER_ENCODE_RESPONSE.value, lit_api=lit_api)
        except HTTPException as error:
            failure = PickleableHTTPException.from_exception(error)
            for queue_id, uid in zip(queue_ids, uids, strict=True):
                self.put_response(transport, queue_id, uid, failure, LitAPIStatus.ERROR, REGULAR)
            return
        except Exception as error:
            logger.exception("inference failed for a batch of %d requests", len(requests))
            for queue_id, uid in zip(queue_ids, uids, strict=True):
                self.put_error_response(transport, queue_id, uid, error, REGULAR)
            return
        for queue_id, uid, body in zip(queue_ids, uids, encoded, strict=True):
            self.put_response(transport, queue_id, uid, body, LitAPIStatus.OK, REGULAR)
