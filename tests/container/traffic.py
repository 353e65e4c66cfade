"""A client loop: /predict requests back to back from a few threads while a fault is under way."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from tests.container.stack import PREDICT_BODY


@dataclass(frozen=True)
class Outcome:
    """One request: when it was sent and answered (monotonic seconds), and what came back."""

    sent: float
    done: float
    sent_at: float  # wall clock (time.time()) of `sent`, to compare with the engine's events
    status: int | None  # None: no HTTP answer
    version: str | None  # the model version that answered a 200
    error: str | None  # the transport error's type when no HTTP answer came
    refused: bool  # no connection was made (refused, or no route): the request was never sent


class ClientLoop:
    """`threads` clients posting /predict until stopped, each on fresh connections.

    Bounded: every client stops by itself after `limit_s` seconds. A fresh connection per
    request means a refused connection is told apart from an accepted request that was dropped.
    """

    def __init__(self, url: str, key: str, threads: int = 2, limit_s: float = 600) -> None:
        self.url, self.key, self.limit_s = url, key, limit_s
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> ClientLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        headers = {"X-API-Key": self.key}
        while not self._stop.is_set() and time.monotonic() < deadline:
            sent, sent_at = time.monotonic(), time.time()
            status = version = error = None
            refused = False
            try:
                response = httpx.post(
                    f"{self.url}/predict", json=PREDICT_BODY, headers=headers, timeout=40
                )
                status = response.status_code
                if status == 200:
                    version = str(response.json()["model"]["version"])
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error, refused = type(exc).__name__, True
            except httpx.TransportError as exc:
                error = type(exc).__name__
            outcome = Outcome(sent, time.monotonic(), sent_at, status, version, error, refused)
            with self._lock:
                self.outcomes.append(outcome)
            if status != 200:
                time.sleep(0.05)  # no busy loop against a server that is away

    def summary(self) -> dict[str, int]:
        """Counts by outcome: `200 v1`, `503`, `refused`, `ReadError`, ..."""
        with self._lock:
            outcomes = list(self.outcomes)
        counts: Counter[str] = Counter()
        for o in outcomes:
            if o.status == 200:
                counts[f"200 v{o.version}"] += 1
            elif o.status is not None:
                counts[str(o.status)] += 1
            else:
                counts["refused" if o.refused else str(o.error)] += 1
        return dict(counts)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)
