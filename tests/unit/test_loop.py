"""`ForecastLoop`: batches what is queued, answers every request once, fails requests loudly."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import HTTPException
from litserve.callbacks import CallbackRunner
from litserve.utils import LitAPIStatus

from stackcast.service.loop import STOP, ForecastLoop


@dataclass
class FakeAPI:
    """Doubles each input; records the batches it saw."""

    max_batch_size: int = 4
    batch_timeout: float = 0.05
    request_timeout: float = 30.0
    fail_with: Exception | None = None
    batches: list[list[int]] = field(default_factory=list)

    def decode_request(self, request: int) -> int:
        return request

    def batch(self, inputs: list[int]) -> list[int]:
        self.batches.append(list(inputs))
        return inputs

    def predict(self, batch: list[int]) -> list[int]:
        if self.fail_with is not None:
            raise self.fail_with
        return [2 * x for x in batch]

    def unbatch(self, output: list[int]) -> list[int]:
        return output

    def encode_response(self, output: int) -> dict[str, int]:
        return {"value": output}


@dataclass
class FakeTransport:
    sent: list[tuple[int, Any]] = field(default_factory=list)

    def send(self, item: Any, consumer_id: int) -> None:
        self.sent.append((consumer_id, item))

    def answers(self) -> dict[str, tuple[Any, LitAPIStatus]]:
        """uid -> (data, status), START messages left out."""
        out = {}
        for _, (uid, (data, status, _, _)) in self.sent:
            if status != LitAPIStatus.START:
                assert uid not in out, f"{uid} answered twice"
                out[uid] = (data, status)
        return out


def _queue(*values: int, age: float = 0.0) -> queue.Queue[Any]:
    q: queue.Queue[Any] = queue.Queue()
    for n, value in enumerate(values):
        q.put((n % 2, f"u{n}", time.monotonic() - age, value))
    return q


def _step(
    api: FakeAPI, q: queue.Queue[Any], transport: FakeTransport, loop: ForecastLoop | None = None
) -> bool:
    return (loop or ForecastLoop()).step(api, q, transport, CallbackRunner())


def test_queued_requests_share_one_batch_up_to_the_limit() -> None:
    api, transport, q = FakeAPI(), FakeTransport(), _queue(1, 2, 3, 4, 5, 6)
    assert _step(api, q, transport) and _step(api, q, transport)
    assert api.batches == [[1, 2, 3, 4], [5, 6]]
    answers = transport.answers()
    assert answers["u4"] == ({"value": 10}, LitAPIStatus.OK)
    # each answer goes to the HTTP server that sent the request
    assert {cid for cid, (uid, (_, status, _, _)) in transport.sent if uid == "u1"} == {1}


def test_a_batch_stops_taking_requests_at_its_weight_limit() -> None:
    api, transport, q = FakeAPI(max_batch_size=64), FakeTransport(), _queue(3, 3, 9, 1, 1)
    loop = ForecastLoop(weigh=lambda value: value, max_batch_weight=6)
    while not q.empty():
        _step(api, q, transport, loop)
    assert api.batches == [[3, 3], [9], [1, 1]]  # 9 alone: heavier than the limit
    with pytest.raises(ValueError, match="max_batch_weight"):
        ForecastLoop(max_batch_weight=0)


def test_the_batch_waits_batch_timeout_for_company_after_the_first_request() -> None:
    api, transport, q = FakeAPI(batch_timeout=0.3), FakeTransport(), _queue(1)
    late = (0, "late", 0.0, 7)

    def arrive_late() -> None:
        time.sleep(0.1)
        q.put((late[0], late[1], time.monotonic(), late[3]))

    threading.Thread(target=arrive_late).start()
    _step(api, q, transport)
    assert api.batches == [[1, 7]]


def test_requests_older_than_the_timeout_get_504_and_the_rest_are_served() -> None:
    api, transport = FakeAPI(request_timeout=1.0), FakeTransport()
    q = _queue(1, age=5.0)
    q.put((0, "fresh", time.monotonic(), 3))
    _step(api, q, transport)
    answers = transport.answers()
    stale, status = answers["u0"]
    assert status == LitAPIStatus.ERROR and isinstance(stale, HTTPException)
    assert stale.status_code == 504
    assert answers["fresh"] == ({"value": 6}, LitAPIStatus.OK)


@pytest.mark.parametrize(
    "error", [HTTPException(503, "model unavailable"), RuntimeError("boom")], ids=str
)
def test_a_failing_batch_answers_every_request_with_the_error(error: Exception) -> None:
    api, transport = FakeAPI(fail_with=error), FakeTransport()
    _step(api, _queue(1, 2, 3), transport)
    answers = transport.answers()
    assert set(answers) == {"u0", "u1", "u2"}
    assert all(status == LitAPIStatus.ERROR for _, status in answers.values())


def test_stop_sentinel_ends_the_loop_and_an_idle_queue_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stackcast.service.loop.IDLE_WAIT", 0.05)
    api, transport = FakeAPI(), FakeTransport()
    q: queue.Queue[Any] = queue.Queue()
    assert _step(api, q, transport) is True and transport.sent == []
    q.put(STOP)
    assert _step(api, q, transport) is False
