"""`stackcast serve` as a real process over real HTTP: batching, isolation, promotion, shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import psutil
import pytest

from stackcast.service.metrics import sample_total
from stackcast.user_errors import ExitCode
from tests.conftest import ServedStore, in_store, register_version
from tests.e2e.servers import free_port, running_server
from tests.service_helpers import serve_command, serve_env

pytestmark = pytest.mark.slow

HISTORY = np.random.default_rng(7).uniform(50, 500, size=48).round(3).tolist()


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def server(served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    env = serve_env(served_store, port, batch_timeout="0.05", reload_interval="0")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with running_server(serve_command(), f"{url}/health", log, env) as process:
        yield Server(url, process)


def _post(client: httpx.Client, url: str, series: list[dict[str, object]]) -> httpx.Response:
    return client.post(f"{url}/predict", json={"series": series})


def test_concurrent_requests_share_forward_passes(server: Server) -> None:
    before = httpx.get(f"{server.url}/metrics").text
    limits = httpx.Limits(max_connections=64)
    with httpx.Client(limits=limits) as client, ThreadPoolExecutor(64) as pool:
        codes = list(
            pool.map(
                lambda _: _post(client, server.url, [{"history": HISTORY}]).status_code,
                range(256),
            )
        )
    after = httpx.get(f"{server.url}/metrics").text
    assert codes == [200] * 256
    passes = sample_total(after, "stackcast_batch_requests_count") - sample_total(
        before, "stackcast_batch_requests_count"
    )
    batched = sample_total(after, "stackcast_batch_requests_sum") - sample_total(
        before, "stackcast_batch_requests_sum"
    )
    assert batched == 256
    assert passes < 256 / 4, f"256 concurrent requests took {passes} forward passes"


def test_one_bad_request_among_concurrent_good_ones_fails_alone(server: Server) -> None:
    nan = '{"series": [{"history": [' + ", ".join(map(str, HISTORY[:-1])) + ", NaN]}]}"
    bad = [
        nan,
        json.dumps({"series": [{"history": HISTORY[:5]}]}),
        json.dumps({"series": [{"history": HISTORY, "horizon": 99}]}),
    ]
    good = json.dumps({"series": [{"id": "good", "history": HISTORY}]})
    bodies = [good] * 30 + bad + [good] * 30
    start = threading.Barrier(len(bodies))

    def send(body: str) -> httpx.Response:
        with httpx.Client() as client:
            start.wait()
            headers = {"content-type": "application/json"}
            return client.post(f"{server.url}/predict", content=body, headers=headers)

    with ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(send, bodies))
    codes = [r.status_code for r in responses]
    assert codes[30:33] == [422, 422, 422]
    assert codes[:30] + codes[33:] == [200] * 60
    means = np.array([r.json()["forecasts"][0]["mean"] for r in responses if r.status_code == 200])
    # Every good request got the same, complete answer (up to float rounding: batches of
    # different sizes take different BLAS paths).
    assert means.shape == (60, 12)
    np.testing.assert_allclose(means, np.broadcast_to(means[0], means.shape), rtol=1e-5)


def test_predict_command_posts_a_long_format_file(server: Server, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"unique_id": np.repeat(["A", "B", "C"], 60), "ds": np.tile(np.arange(60), 3)}
    )
    frame["y"] = np.random.default_rng(3).uniform(50, 500, len(frame)).round(3)
    data, out = tmp_path / "series.csv", tmp_path / "forecasts.csv"
    frame.to_csv(data, index=False)
    command = [
        sys.executable,
        "-m",
        "stackcast",
        "predict",
        "--url",
        server.url,
        "--csv",
        str(data),
    ]
    done = subprocess.run(
        [*command, "--id", "A", "--id", "C", "--horizon", "6", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "model: tiny version 1" in done.stdout
    written = pd.read_csv(out)
    assert list(written.columns) == ["unique_id", "ds", "h", "y_hat"]
    assert written.groupby("unique_id").size().to_dict() == {"A": 6, "C": 6}
    assert written[written.unique_id == "A"]["ds"].tolist() == list(range(60, 66))  # next steps
    direct = httpx.post(
        f"{server.url}/predict",
        json={"series": [{"history": frame[frame.unique_id == "C"]["y"].tolist(), "horizon": 6}]},
    ).json()["forecasts"][0]["mean"]
    np.testing.assert_allclose(written[written.unique_id == "C"]["y_hat"], direct, rtol=1e-6)

    refused = subprocess.run(
        [*command, "--horizon", "500"], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == ExitCode.SERVICE_REFUSED
    assert "series[0].horizon" in refused.stderr


@dataclass
class Load:
    """Clients hammering /predict until stopped; every answer is kept."""

    url: str
    answers: list[tuple[int, tuple[float, ...]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = _post(client, self.url, [{"history": HISTORY}])
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                    continue
                body = response.json()
                mean = tuple(body["forecasts"][0]["mean"])
                self.answers.append((int(body["model"]["version"]), mean))


def _offline(store: ServedStore, uri: str) -> np.ndarray:
    with in_store(store.directory):
        model = mlflow.pyfunc.load_model(uri)
    return np.asarray(model.predict(np.asarray([HISTORY], dtype=np.float32)))[0]


def test_promoted_version_is_swapped_in_under_load_without_failures(
    served_store: ServedStore, tmp_path: Path
) -> None:
    register_version(served_store, "swap", seed=1)
    port = free_port()
    env = serve_env(served_store, port, reload_interval="1")
    env["STACKCAST_MODEL_URI"] = "models:/swap@champion"
    url = f"http://127.0.0.1:{port}"
    with running_server(serve_command(), f"{url}/health", tmp_path / "serve.log", env):
        load = Load(url)
        clients = [threading.Thread(target=load.run) for _ in range(8)]
        for client in clients:
            client.start()
        time.sleep(1.5)
        register_version(served_store, "swap", seed=2)  # the promotion
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(a[0] == 2 for a in load.answers[-8:]):
            time.sleep(0.2)
        time.sleep(1.0)  # keep the load on after the swap
        load.stop.set()
        for client in clients:
            client.join()
        info = httpx.get(f"{url}/info").json()
        metrics = httpx.get(f"{url}/metrics").text

    assert load.failures == []
    versions = [a[0] for a in load.answers]
    assert versions[0] == 1 and versions[-1] == 2
    assert info["model"]["version"] == "2"
    assert sample_total(metrics, "stackcast_model_swaps_total") == 1
    expected = {
        1: _offline(served_store, "models:/swap/1"),
        2: _offline(served_store, "models:/swap/2"),
    }
    assert not np.allclose(expected[1], expected[2])
    for version, mean in load.answers:  # each answer is wholly the version it names
        np.testing.assert_allclose(mean, expected[version], rtol=1e-5)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_and_leaves_no_process(
    served_store: ServedStore, tmp_path: Path, signum: int
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = serve_env(served_store, port, reload_interval="0")
    with running_server(serve_command(), f"{url}/health", tmp_path / "serve.log", env) as process:
        family = psutil.Process(process.pid).children(recursive=True)
        assert len(family) >= 3  # queue manager, inference worker, HTTP server at least
        load = Load(url)
        clients = [threading.Thread(target=load.run) for _ in range(4)]
        for client in clients:
            client.start()
        time.sleep(1.0)
        process.send_signal(signum)  # the main process only, as `docker stop` does
        code = process.wait(timeout=60)
        load.stop.set()
        for client in clients:
            client.join()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
    assert len(load.answers) > 0
    # Requests in flight when the signal came were answered; later ones found no server.
    assert not [f for f in load.failures if f[:1] == "5"], load.failures
