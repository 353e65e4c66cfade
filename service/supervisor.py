"""Restart inference workers that die, and keep what the server reports true meanwhile.

LitServe 0.2.19 has `restart_workers=True` and a monitor thread, used here for what they do
right (relaunching the worker in the same slot, with the same pipes, through
`launch_single_inference_worker`). Its monitor falls short in four ways, which this one fixes:

- it polls `is_alive()` every 2 s, so `/health` says 200 for up to 2 s after the worker died;
  this one wakes on the process's exit (its sentinel) and marks the slot not ready at once;
- it fails the dead worker's requests in the main process's response buffer, where they are
  not (they wait in the HTTP servers): this one tells the HTTP servers (`WorkerGone`);
- the dead worker's published state (`worker-<pid>.json`, read by `/info`) stayed: dropped here;
- a worker that dies as soon as it starts is relaunched every 2 s forever: here the second
  young death in a row waits 2 s, then 4, 8, ... up to a minute.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from litserve.utils import WorkerSetupStatus

from stackcast.service.inflight import WorkerGone

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often the list of workers is re-read (a wait on them wakes sooner)
YOUNG_SECONDS = 60.0  # a worker that dies younger than this is in a crash loop: back off
MAX_DELAY_SECONDS = 60.0


class WorkerSupervisor(threading.Thread):
    """Thread in the main process watching `server.inference_workers`.

    Args:
        server: the running `ForecastServer` (its workers, their status, the transport).
        state_dir: where workers publish `worker-<pid>.json`.
    """

    def __init__(self, server: Any, state_dir: Path) -> None:
        super().__init__(name="stackcast-worker-supervisor", daemon=True)
        self.server = server
        self.state_dir = state_dir
        self._lock = threading.Lock()  # held while a worker is replaced
        self._stopping = False
        self._born = {index: time.monotonic() for index in range(len(server.inference_workers))}
        self._crashes = dict.fromkeys(self._born, 0)  # consecutive young deaths per slot

    def stop(self) -> None:
        """Relaunch nothing from now on (shutdown is terminating the workers)."""
        with self._lock:
            self._stopping = True

    def run(self) -> None:
        """Watch until stopped."""
        try:
            while not self._stopping:
                workers: list[BaseProcess] = list(self.server.inference_workers)
                wait([worker.sentinel for worker in workers], timeout=POLL_SECONDS)
                for index, worker in enumerate(workers):
                    if worker.exitcode is not None and not self._stopping:
                        self._replace(index, worker)
        except Exception:
            logger.exception("the worker supervisor failed; dead workers will not be restarted")

    def _replace(self, index: int, dead: BaseProcess) -> None:
        api = self.server.litapi_connector.lit_apis[0]  # ForecastServer serves one API
        endpoint = api.api_path.split("/")[-1]
        # Not ready from now until the replacement finished its setup: /health answers 503.
        self.server.workers_setup_status[f"{endpoint}_{index}"] = WorkerSetupStatus.STARTING
        pid = int(dead.pid or 0)
        logger.error("inference worker %d (pid %d) %s; restarting it", index, pid, _died(dead))
        (self.state_dir / f"worker-{pid}.json").unlink(missing_ok=True)
        self.server._transport.worker_gone(WorkerGone(index, pid))
        delay = self._delay(index)
        if delay:
            logger.warning("inference worker %d keeps dying; next start in %.0f s", index, delay)
            time.sleep(delay)
        with self._lock:
            if self._stopping:
                return
            self.server.inference_workers[index] = self.server.launch_single_inference_worker(
                api, index
            )
            self._born[index] = time.monotonic()

    def _delay(self, index: int) -> float:
        if time.monotonic() - self._born.get(index, 0.0) >= YOUNG_SECONDS:
            self._crashes[index] = 0
            return 0.0
        crashes = self._crashes[index] = self._crashes.get(index, 0) + 1
        return 0.0 if crashes == 1 else float(min(2 ** (crashes - 1), MAX_DELAY_SECONDS))


def _died(worker: BaseProcess) -> str:
    code = worker.exitcode
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
