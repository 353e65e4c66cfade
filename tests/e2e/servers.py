"""Start a real server process for a test, wait until it answers, and stop its whole group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServedStore
from tests.service_helpers import serve_command, serve_env


def mlflow_server_command(backend_store_uri: str, artifacts: Path, port: int) -> list[str]:
    """`mlflow server` on 127.0.0.1:`port`, one worker, serving artifacts from `artifacts`."""
    return [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--allowed-hosts",
        f"127.0.0.1:{port},localhost:{port}",
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    command: list[str],
    health_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group until `health_url` answers 200; stop it after."""
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert server.poll() is None, log_path.read_text()[-3000:]
                try:
                    if httpx.get(health_url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"{command[0]} did not answer {health_url} in {timeout} s")
                time.sleep(0.5)
            yield server
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


@contextmanager
def stackcast_server(store: ServedStore, log_dir: Path) -> Iterator[str]:
    """A real `stackcast serve` of `store`'s champion (no reload polling); yields its URL."""
    port = free_port()
    env = serve_env(store, port, reload_interval="0")
    url = f"http://127.0.0.1:{port}"
    with running_server(serve_command(), f"{url}/health", log_dir / "serve.log", env):
        yield url
