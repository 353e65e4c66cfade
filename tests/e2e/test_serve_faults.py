"""`stackcast serve` under faults: a killed inference worker, wrong keys, a poisoned model."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from stackcast.user_errors import ExitCode
from tests.conftest import ServedStore, register_version
from tests.e2e.servers import free_port, running_server
from tests.poisoned import model_dir, plant
from tests.service_helpers import API_KEY, serve_command, serve_env

pytestmark = pytest.mark.slow

HISTORY = np.random.default_rng(11).uniform(50, 500, size=48).round(3).tolist()
WRONG_KEY = "wrong-key-0000-1111-2222-3333"
REQUEST_TIMEOUT = 10.0  # the server's: a request lost with the worker gets its 504 by then
RESTART_BOUND = 120.0  # seconds a restarted worker may take (spawn, imports, model load)
KEYED = {"x-api-key": API_KEY}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def server(served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    env = serve_env(
        served_store,
        port,
        reload_interval="0",
        batch_timeout="0.01",
        request_timeout=str(REQUEST_TIMEOUT),
        api_key=API_KEY,
    )
    log = tmp_path_factory.mktemp("faults") / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with running_server(serve_command(), f"{url}/health", log, env) as process:
        yield Server(url, process, log)


def test_wrong_or_missing_key_gets_401_that_echoes_no_key(server: Server) -> None:
    body = {"series": [{"history": HISTORY}]}
    for headers in ({"x-api-key": WRONG_KEY}, {}, {"x-api-key": API_KEY[:-1]}):
        for method, path in (("POST", "/predict"), ("GET", "/info")):
            refused = httpx.request(method, f"{server.url}{path}", json=body, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json() == {"detail": "missing or wrong X-API-Key header"}
            shown = refused.text + str(refused.headers)
            assert API_KEY not in shown and WRONG_KEY not in shown
    assert httpx.post(f"{server.url}/predict", json=body, headers=KEYED).status_code == 200


@dataclass
class Load:
    """Clients posting until stopped; every outcome is kept with the time it came back."""

    url: str
    answered: list[float] = field(default_factory=list)  # monotonic time of each 200
    errors: list[tuple[float, float, int, str]] = field(default_factory=list)  # sent, back, ...
    broken: list[str] = field(default_factory=list)  # no HTTP answer at all
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = {"series": [{"history": HISTORY}]}
        with httpx.Client(timeout=REQUEST_TIMEOUT + 30, headers=KEYED) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(f"{self.url}/predict", json=body)
                except httpx.HTTPError as error:
                    self.broken.append(repr(error))
                    continue
                back = time.monotonic()
                if response.status_code == 200:
                    self.answered.append(back)
                else:
                    detail = response.json().get("detail", "")
                    self.errors.append((sent, back, response.status_code, str(detail)))


def _workers(server: Server) -> list[dict[str, object]]:
    info = httpx.get(f"{server.url}/info", headers=KEYED).json()
    return list(info["workers"])


def test_killed_worker_is_restarted_and_no_request_hangs(server: Server) -> None:
    [worker] = _workers(server)
    pid = int(str(worker["pid"]))
    assert pid in {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)}
    load = Load(server.url)
    clients = [threading.Thread(target=load.run) for _ in range(8)]
    for client in clients:
        client.start()
    time.sleep(1.5)
    assert load.answered, load.errors[:3]

    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    health: list[tuple[float, int]] = []
    while time.monotonic() - killed < RESTART_BOUND:
        code = httpx.get(f"{server.url}/health", timeout=5).status_code
        health.append((time.monotonic() - killed, code))
        if code == 200 and any(c == 503 for _, c in health):
            break
        time.sleep(0.05)
    healthy = killed + health[-1][0]
    time.sleep(1.0)  # the load goes on after the recovery
    load.stop.set()
    for client in clients:
        client.join(timeout=REQUEST_TIMEOUT + 60)
    assert not any(client.is_alive() for client in clients), "a request hung"

    statuses = [e[2] for e in load.errors]
    print(
        f"\nworker restart: /health 200 again {healthy - killed:.1f} s after SIGKILL; "
        f"{len(load.answered)} answered, {statuses.count(503)} got 503 (in the dead worker), "
        f"{statuses.count(504)} got 504"
    )
    codes = [code for _, code in health]
    assert 503 in codes and codes[-1] == 200, health[-5:]
    assert codes.index(503) <= 2  # not ready from the moment it died (two polls of slack)
    assert load.broken == []  # every request got an HTTP answer
    for sent, back, status, detail in load.errors:
        assert status in (503, 504) and detail, (status, detail)
        assert back - sent < REQUEST_TIMEOUT + 5  # failed fast, or at worst at the timeout
    lost = [e for e in load.errors if e[2] == 503]
    assert all(e[1] - killed < 5 for e in lost)  # the dead worker's requests: answered at once
    assert any(t > healthy for t in load.answered)  # served again after the restart
    assert (
        httpx.post(
            f"{server.url}/predict", json={"series": [{"history": HISTORY}]}, headers=KEYED
        ).status_code
        == 200
    )

    [restarted] = _workers(server)  # the dead worker's state is gone, the new one's is there
    assert restarted["pid"] != pid and psutil.pid_exists(int(str(restarted["pid"])))
    log = server.log.read_text()
    assert f"inference worker 0 (pid {pid}) was killed by SIGKILL; restarting it" in log


def test_poisoned_weights_stop_the_server_with_a_clear_error(
    served_store: ServedStore, tmp_path: Path
) -> None:
    version = register_version(served_store, "poisoned-serve", seed=9)
    marker = tmp_path / "unpickled"
    plant(
        model_dir(served_store, "poisoned-serve", version) / "weights.safetensors", marker, "pickle"
    )
    env = serve_env(served_store, free_port(), reload_interval="0")
    env["STACKCAST_MODEL_URI"] = "models:/poisoned-serve@champion"
    done = subprocess.run(serve_command(), env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == ExitCode.MODEL_UNUSABLE, output[-3000:]
    assert (
        f"poisoned-serve version {version}: weights.safetensors is not a safetensors file" in output
    )
    assert "refusing to load" in output
    assert "error: the inference worker failed to start" in done.stderr
    assert not marker.exists()


def test_the_key_never_appears_in_the_server_logs(server: Server) -> None:
    # Last in this module: by now the log holds start-up, 401s, a worker's death and restart.
    log = server.log.read_text()
    assert "serving models:/tiny@champion" in log
    assert API_KEY not in log and WRONG_KEY not in log
