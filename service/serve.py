"""`serve`: run the server until SIGTERM/SIGINT, then stop every process it started."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import tempfile
from pathlib import Path
from types import FrameType

from stackcast.service.app import build_server
from stackcast.service.logs import configure_logging
from stackcast.service.settings import ServeSettings

logger = logging.getLogger(__name__)


def _stop_gracefully(signum: int, frame: FrameType | None) -> None:
    # LitServe shuts down cleanly on KeyboardInterrupt: HTTP servers drain in-flight requests
    # (uvicorn's graceful shutdown), then inference workers and the queue manager stop. Plain
    # SIGTERM would kill only this process and orphan all of them.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the drain
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def _default_signals() -> None:
    # Forked helpers (queue manager, HTTP servers) must not run the handler above; uvicorn
    # installs its own graceful one in the HTTP servers.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_children() -> None:
    """Last resort if start-up was interrupted before LitServe's own shutdown could run."""
    for child in multiprocessing.active_children():
        child.terminate()
        child.join(timeout=5)
        if child.is_alive():
            child.kill()


def _registry_client_defaults() -> None:
    # MLflow's client retries a failed request 7 times with exponential backoff (minutes in
    # all) and waits 120 s for an answer: one startup attempt or one alias check could hang
    # that long. The service retries on its own schedule (service.retry), so each request
    # fails fast. Its download progress bars only clutter a server's log. Values set in the
    # environment win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def serve(settings: ServeSettings) -> None:
    """Serve `settings.model_uri` over HTTP until the process is signalled to stop."""
    configure_logging()
    _registry_client_defaults()  # before any worker is spawned: they inherit the environment
    with tempfile.TemporaryDirectory(prefix="stackcast-serve-") as runtime:
        server = build_server(settings, Path(runtime))
        os.register_at_fork(after_in_child=_default_signals)
        signal.signal(signal.SIGTERM, _stop_gracefully)
        signal.signal(signal.SIGINT, _stop_gracefully)
        # torch + mlflow imports leave millions of long-lived objects; a full GC pass over them
        # stalled the HTTP servers (forked from here) for ~250 ms every few seconds.
        gc.freeze()
        try:
            server.run(
                host=settings.host,
                port=settings.port,
                num_api_servers=settings.api_servers,
                generate_client_file=False,
                log_level="warning",
            )
        finally:
            _stop_children()
    logger.info("stopped")
