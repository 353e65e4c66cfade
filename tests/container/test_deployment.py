"""The README's deployment, run for real: image, compose stack, faults, the MLflow UI.

One stack serves the whole module, in the order an operator lives it: deploy and train, serve,
promote a better model, survive restarts, kills, stops and outages, keep everything across
`down`/`up`, and lose it on `down -v`. Later tests build on the state earlier ones left, so the
module runs top to bottom. Numbers (timings, request counts) go to `results.json` among the
test artifacts.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.container.browser import chromium, render
from tests.container.conftest import RELOAD_INTERVAL
from tests.container.image_scan import strings_in_image
from tests.container.stack import (
    ALIAS,
    EXPERIMENT,
    MODEL_NAME,
    Stack,
    readme_deployment_commands,
    set_env_file,
)
from tests.container.traffic import ClientLoop

# Between the engine's SIGTERM and the HTTP server's own shutdown (test_stop_drains_...).
RACE_SECONDS = 1.0

pytestmark = [pytest.mark.container, pytest.mark.slow]

README_COMMANDS = [
    "cp .env.example .env",
    "docker compose up -d mlflow",
    "docker compose --profile train run --rm trainer",
    "docker compose up -d",
]
TRAIN = "stackcast train --config configs/m4_hourly.yaml"  # the README's form for extra --set
SMALL = {  # ~a minute on 2 cores: the bundled M4 Hourly data, a small model, one short epoch
    "model.hidden_size": 16,
    "data.stride": 24,
    "data.samples_per_epoch": 1024,
    "trainer.max_epochs": 1,
    "trainer.progress_bar": "false",
}
BETTER = {  # the same contract (input, horizon, season), trained ~25x longer: a lower val/owa
    **SMALL,
    "model.hidden_size": 32,
    "data.samples_per_epoch": 8192,
    "trainer.max_epochs": 3,
}
MAX_ADDED_BYTES = 1.7e9  # what the project adds to its base; measured 1.47 GB
SERVICE_LABEL = "com.docker.compose.service"  # the goal for the CPU image on python:3.11-slim


def sets(settings: dict[str, object]) -> str:
    return " ".join(f"--set {key}={value}" for key, value in settings.items())


@dataclass(frozen=True)
class Training:
    """What `stackcast train` printed: run id, registered version, whether the alias moved."""

    run_id: str
    version: str
    promoted: bool

    @classmethod
    def parse(cls, output: str) -> Training:
        lines = output.splitlines()
        run = next(line.split(": ", 1)[1] for line in lines if line.startswith("run_id: "))
        registered = next(line for line in lines if line.startswith("registered: "))
        promoted = any(line.startswith(f"alias '{ALIAS}' moved") for line in lines)
        return cls(run.strip(), registered.rsplit(" ", 1)[1], promoted)


@dataclass
class Deployment:
    stack: Stack
    first: Training
    results: dict[str, Any]

    def record(self, key: str, value: Any) -> None:
        self.results[key] = value
        (self.stack.artifacts / "results.json").write_text(json.dumps(self.results, indent=2))


def events(stack: Stack) -> list[dict[str, Any]]:
    """The engine's container events for this project so far (tests/container/conftest.py)."""
    path = stack.artifacts / "events.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if not row.get("Action", row.get("status", "")).startswith("exec_")]


def first_time(rows: list[dict[str, Any]], service: str, action: str) -> int:
    """Nanosecond time of the first `action` event of `service`'s containers."""
    for row in rows:
        attributes = row["Actor"]["Attributes"]
        if attributes.get(SERVICE_LABEL) == service and row["Action"] == action:
            return int(row["timeNano"])
    raise AssertionError(f"no {action!r} event of {service}: {[r['Action'] for r in rows]}")


@pytest.fixture(scope="module")
def deployed(stack: Stack) -> Deployment:
    """The README's four commands, as written there, with a small training config appended."""
    assert readme_deployment_commands() == README_COMMANDS
    copy, up_mlflow, train, up = README_COMMANDS
    results: dict[str, Any] = {"project": stack.project, "artifacts": str(stack.artifacts)}
    stack.sh(copy, timeout=10)
    set_env_file(stack.checkout / ".env", stack.dotenv)  # the two secrets, free ports, interval
    for line, timeout in ((up_mlflow, 1500), (f"{train} {TRAIN} {sets(SMALL)}", 900), (up, 600)):
        start = time.monotonic()
        output = stack.sh(line, timeout=timeout)
        results[f"seconds: {line.split(' stackcast ')[0]}"] = round(time.monotonic() - start, 1)
        if " run " in line:
            first = Training.parse(output)
    return Deployment(stack, first, results)


# --- the image -------------------------------------------------------------------------------


def test_image_is_built_runs_unprivileged_and_reports_its_size(deployed: Deployment) -> None:
    stack = deployed.stack
    image = stack.env["STACKCAST_IMAGE"]
    config = json.loads(stack.docker("image", "inspect", image))[0]
    assert config["Config"]["User"] == "stackcast"
    for service in ("mlflow", "server"):
        uid = stack.docker("compose", "exec", "-T", service, "id", "-u").strip()
        assert uid == "10001", f"{service} runs as uid {uid}"
    # What the image adds to its base, layer by layer: the size to report and what dominates.
    base = stack.env.get("BASE_IMAGE", "python:3.11-slim")
    base_size = json.loads(stack.docker("image", "inspect", base))[0]["Size"]
    history = stack.docker("history", "--no-trunc", "--format", "{{json .}}", image)
    layers = [json.loads(line) for line in history.splitlines()]
    deployed.record(
        "image",
        {
            "bytes": config["Size"],
            "base": base,
            "base_bytes": base_size,
            "added_bytes": config["Size"] - base_size,
            "largest_layers": sorted(
                ((row["Size"], row["CreatedBy"][:160]) for row in layers),
                key=lambda row: -_bytes(row[0]),
            )[:4],
        },
    )
    # The goal (under 1.5 GB on python:3.11-slim) is reported, not asserted: results.json says
    # where it stands. This bound catches a regression such as a CUDA build of torch (+3 GB).
    assert config["Size"] - base_size < MAX_ADDED_BYTES


def _bytes(size: str) -> float:
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    number = size.rstrip("kKMGB")
    return float(number) * units[size[len(number) :]] if number else 0.0


def test_no_secret_in_any_layer_or_the_image_config(deployed: Deployment) -> None:
    stack = deployed.stack
    image = stack.env["STACKCAST_IMAGE"]
    secrets_ = [stack.dotenv["POSTGRES_PASSWORD"], stack.api_key]
    history = stack.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    config = stack.docker("image", "inspect", image)
    for secret in secrets_:
        assert secret not in history and secret not in config
    env = json.loads(config)[0]["Config"]["Env"]
    assert not [v for v in env if v.split("=")[0] in ("POSTGRES_PASSWORD", "STACKCAST_API_KEY")]
    # Every byte of every layer: the .env beside the Dockerfile held both secrets at build time.
    control = "def load_m4_hourly"  # in training/m4.py: proves the scan reads file contents
    found = strings_in_image(image, [*secrets_, control])
    assert found[control], "the scan did not see the image's files"
    assert not found[secrets_[0]] and not found[secrets_[1]], "a secret is in the image"
    # The running server has its key from the environment, as compose gives it.
    server_env = stack.inspect("server")["Config"]["Env"]
    assert f"STACKCAST_API_KEY={stack.api_key}" in server_env


# --- the stack -------------------------------------------------------------------------------


def test_services_came_up_in_order_and_healthy(deployed: Deployment) -> None:
    stack = deployed.stack
    stack.wait_healthy("postgres", "mlflow", "server")
    rows = events(stack)
    order = [
        first_time(rows, "postgres", "start"),
        first_time(rows, "postgres", "health_status: healthy"),
        first_time(rows, "mlflow", "start"),
        first_time(rows, "mlflow", "health_status: healthy"),
        first_time(rows, "trainer", "start"),
        first_time(rows, "trainer", "die"),
        first_time(rows, "server", "start"),
        first_time(rows, "server", "health_status: healthy"),
    ]
    assert order == sorted(order), order
    [trainer_exit] = [
        r["Actor"]["Attributes"].get("exitCode")
        for r in rows
        if r["Action"] == "die" and r["Actor"]["Attributes"].get(SERVICE_LABEL) == "trainer"
    ]
    assert trainer_exit == "0"
    assert "trainer" not in stack.services()  # `run --rm` removed it
    deployed.record(
        "startup_seconds",
        {
            "postgres healthy": (order[1] - order[0]) / 1e9,
            "mlflow healthy": (order[3] - order[2]) / 1e9,
            "trainer ran": (order[5] - order[4]) / 1e9,
            "server healthy": (order[7] - order[6]) / 1e9,
        },
    )


def test_predict_answers_with_the_key_only(deployed: Deployment) -> None:
    stack = deployed.stack
    response = httpx.post(
        f"{stack.server_url}/predict",
        json={"series": [{"id": "a", "history": [float(i % 24) for i in range(168)]}]},
        headers={"X-API-Key": stack.api_key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {
        "name": MODEL_NAME,
        "version": deployed.first.version,
        "run_id": deployed.first.run_id,
    }
    [forecast] = body["forecasts"]
    assert forecast["id"] == "a" and len(forecast["mean"]) == 48  # the model's horizon
    assert all(isinstance(x, float) for x in forecast["mean"])
    unauthorized = httpx.post(f"{stack.server_url}/predict", json={"series": []}, timeout=30)
    assert unauthorized.status_code == 401


def test_mlflow_rest_api_shows_the_run_params_gradients_and_champion(
    deployed: Deployment,
) -> None:
    stack, first = deployed.stack, deployed.first
    experiment_id = _experiment_id(stack)
    runs = stack.rest("POST", "runs/search", json={"experiment_ids": [experiment_id]})["runs"]
    [run] = [r for r in runs if r["info"]["run_id"] == first.run_id]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["model.hidden_size"] == "16" and params["trainer.max_epochs"] == "1"
    assert params["data.source"] == "m4_hourly" and params["data.num_series"] == "414"
    metrics = {m["key"] for m in run["data"]["metrics"]}
    assert {"val/owa", "val/loss"} <= metrics, metrics
    names = set(_gradient_files(stack, first.run_id))
    assert {"gradients/map.png", "gradients/map.json"} <= names, names
    # The files themselves, through the tracking server's artifact proxy (as the UI gets them).
    png = httpx.get(
        f"{stack.mlflow_url}/get-artifact",
        params={"path": "gradients/map.png", "run_uuid": first.run_id},
        timeout=30,
    )
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    gradient_map = httpx.get(
        f"{stack.mlflow_url}/get-artifact",
        params={"path": "gradients/map.json", "run_uuid": first.run_id},
        timeout=30,
    ).json()
    assert gradient_map
    champion = stack.champion()
    assert (champion["version"], champion["run_id"]) == (first.version, first.run_id)
    assert first.promoted  # the first version of a new model takes the alias
    deployed.record("first_run", {"run_id": first.run_id, "version": first.version})


def _metric(stack: Stack, run_id: str, key: str = "val/owa") -> float:
    run = stack.rest("GET", "runs/get", params={"run_id": run_id})["run"]
    return float(next(m["value"] for m in run["data"]["metrics"] if m["key"] == key))


def test_a_better_run_moves_the_alias_and_the_server_swaps_without_a_failed_request(
    deployed: Deployment,
) -> None:
    stack = deployed.stack
    started = stack.inspect("server")["State"]["StartedAt"]
    with ClientLoop(stack.server_url, stack.api_key) as loop:
        time.sleep(2)
        output = stack.sh(
            f"docker compose --profile train run --rm trainer {TRAIN} {sets(BETTER)}",
            timeout=900,
        )
        second = Training.parse(output)
        swap_seconds = stack.wait_served(second.version, timeout=60 + 10 * RELOAD_INTERVAL)
        time.sleep(2)
    first_owa, second_owa = _metric(stack, deployed.first.run_id), _metric(stack, second.run_id)
    assert second_owa < first_owa, f"the second run is not better: {second_owa} >= {first_owa}"
    assert second.promoted and stack.champion()["version"] == second.version
    outcomes = loop.snapshot()
    summary = loop.summary()
    deployed.record(
        "promotion",
        {
            "val/owa": {"first": first_owa, "second": second_owa},
            "versions": [deployed.first.version, second.version],
            "seconds from the trainer's exit to v2 served": swap_seconds,
            "requests": summary,
        },
    )
    assert {o.status for o in outcomes} == {200}, summary
    assert {o.version for o in outcomes} == {deployed.first.version, second.version}, summary
    assert outcomes[-1].version == second.version
    state = stack.inspect("server")
    assert state["State"]["StartedAt"] == started and state["RestartCount"] == 0  # no restart
    deployed.results["second"] = {"run_id": second.run_id, "version": second.version}


def _champion_version(deployed: Deployment) -> str:
    return str(deployed.results["second"]["version"])


def test_restart_and_killed_server_come_back_serving_the_same_version(
    deployed: Deployment,
) -> None:
    stack = deployed.stack
    version = _champion_version(deployed)
    outcome: dict[str, float | str] = {}

    start = time.monotonic()
    stack.sh("docker compose restart server", timeout=180)
    stack.wait_healthy("server")
    outcome["restart: seconds to healthy"] = time.monotonic() - start
    assert stack.served_version() == version

    # `docker kill`: the engine counts it as a manual stop (no restart policy applies), so
    # the operator's `up -d` brings it back.
    container = stack.container("server")
    stack.docker("kill", container)
    time.sleep(3)
    assert stack.services()["server"]["State"] == "exited"
    start = time.monotonic()
    stack.sh("docker compose up -d", timeout=180)
    stack.wait_healthy("server")
    outcome["docker kill + up -d: seconds to healthy"] = time.monotonic() - start
    assert stack.served_version() == version

    # A crash (SIGKILL to the container's init from outside, as the OOM killer does): the
    # restart policy brings it back on its own.
    state = stack.inspect("server")
    restarts = state["RestartCount"]
    os.kill(int(state["State"]["Pid"]), signal.SIGKILL)
    start = time.monotonic()
    deadline = start + 30
    while stack.inspect("server")["RestartCount"] == restarts:
        assert time.monotonic() < deadline, "the restart policy did not restart the server"
        time.sleep(0.5)
    stack.wait_healthy("server")
    outcome["SIGKILL crash: seconds to healthy (restart policy)"] = time.monotonic() - start
    assert stack.served_version() == version
    deployed.record("restart_and_kill", outcome)


def test_stop_drains_accepted_requests_without_a_5xx(deployed: Deployment) -> None:
    stack = deployed.stack
    # The container's own address on the project's network: a refused connection (not
    # accepted) is told apart from an accepted request that was dropped, which the published
    # port's proxy would blur.
    url = f"http://{stack.ip('server')}:8000"
    container = stack.container("server")
    with ClientLoop(url, stack.api_key, threads=4) as loop:
        time.sleep(3)
        stop_sent, stop_sent_at = time.monotonic(), time.time()
        stack.sh("docker compose stop server", timeout=120)
        stopped = time.monotonic()
        time.sleep(1)
    sigterm = next(  # when the engine sent SIGTERM (the `kill` event, signal 15)
        int(row["timeNano"]) / 1e9
        for row in events(stack)
        if row["Action"] == "kill"
        and row["Actor"]["ID"].startswith(container)  # compose ps gives the short id
        and row["Actor"]["Attributes"].get("signal") == "15"
        and int(row["timeNano"]) / 1e9 >= stop_sent_at - 1  # not the earlier `restart`'s
    )
    outcomes = loop.snapshot()
    in_flight = [o for o in outcomes if o.sent_at < sigterm < o.sent_at + (o.done - o.sent)]
    answered = [o for o in outcomes if o.status is not None]
    unanswered = [o for o in outcomes if o.status is None and not o.refused]
    deployed.record(
        "stop_under_load",
        {
            "requests": loop.summary(),
            "in flight at SIGTERM": len(in_flight),
            "in flight at SIGTERM, answered 200": sum(o.status == 200 for o in in_flight),
            "connections closed unanswered, sent after SIGTERM": sum(
                o.sent_at >= sigterm for o in unanswered
            ),
            "connections closed unanswered, sent just before SIGTERM": sum(
                o.sent_at < sigterm for o in unanswered
            ),
            "seconds from `stop` to exited": stopped - stop_sent,
        },
    )
    state, exit_code = stack.services()["server"]["State"], stack.inspect("server")["State"]
    stack.sh("docker compose up -d", timeout=180)  # back up before judging: later tests use it
    stack.wait_healthy("server")
    assert [o.status for o in answered if o.status >= 500] == [], loop.summary()
    # uvicorn's shutdown waits for every request it has read, and closes keep-alive connections
    # with none in progress. A request written on one between the engine's SIGTERM and the HTTP
    # server's own shutdown (the signal passes tini, then the main process; on a loaded 2-core
    # machine that took up to a few hundred ms) is closed unread: unanswered, never a 5xx, never
    # a hang. Every request sent earlier than that was answered: none the server read was lost.
    assert all(o.sent_at >= sigterm - RACE_SECONDS for o in unanswered), loop.summary()
    assert {o.error for o in unanswered} <= {"ReadError", "RemoteProtocolError"}, loop.summary()
    assert state == "exited" and exit_code["ExitCode"] == 0  # drained and exited, not killed


@pytest.mark.parametrize("store", ["mlflow", "postgres"])
def test_tracking_outage_keeps_serving_and_promotions_follow_after(
    deployed: Deployment, store: str
) -> None:
    stack = deployed.stack
    first, second = deployed.first.version, _champion_version(deployed)
    assert stack.served_version() == second
    with ClientLoop(stack.server_url, stack.api_key) as loop:
        stack.sh(f"docker compose stop {store}", timeout=120)
        time.sleep(4 * RELOAD_INTERVAL)  # several failed alias checks
        during = loop.summary()
        stack.sh(f"docker compose start {store}", timeout=120)
        stack.wait_healthy("postgres", "mlflow", timeout=300)
    assert {o.status for o in loop.snapshot()} == {200}, loop.summary()
    assert {o.version for o in loop.snapshot()} == {second}
    # A promotion after the outage (here a roll-back, then forward again) is followed.
    outcome: dict[str, Any] = {"requests during the outage": during, "all": loop.summary()}
    for version in (first, second):
        start = time.monotonic()
        moved = _move_alias(stack, version, timeout=120)
        outcome[f"alias -> v{version}: seconds to serve it"] = stack.wait_served(version) + moved
        outcome[f"alias -> v{version}: seconds for the store to accept the move"] = moved
        assert time.monotonic() - start < 180
    deployed.record(f"{store}_outage", outcome)


def _move_alias(stack: Stack, version: str, timeout: float) -> float:
    """Move the alias as an operator does (REST); retried while the store warms up again."""
    start = time.monotonic()
    body = {"name": MODEL_NAME, "alias": ALIAS, "version": version}
    while True:
        response = httpx.post(
            f"{stack.mlflow_url}/api/2.0/mlflow/registered-models/alias", json=body, timeout=30
        )
        if response.status_code == 200:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"{response.status_code}: {response.text}"
        time.sleep(2)


# --- volumes and the UI ----------------------------------------------------------------------


def _experiment_id(stack: Stack) -> str:
    params = {"experiment_name": EXPERIMENT}
    return str(
        stack.rest("GET", "experiments/get-by-name", params=params)["experiment"]["experiment_id"]
    )


def _gradient_files(stack: Stack, run_id: str) -> list[str]:
    listed = stack.rest("GET", "artifacts/list", params={"run_id": run_id, "path": "gradients"})
    return sorted(f["path"] for f in listed.get("files", []))


def _registry_state(stack: Stack) -> dict[str, Any]:
    experiment_id = _experiment_id(stack)
    runs = stack.rest("POST", "runs/search", json={"experiment_ids": [experiment_id]})["runs"]
    model = stack.rest("GET", "registered-models/get", params={"name": MODEL_NAME})
    versions = stack.rest("GET", "model-versions/search", params={"filter": f"name='{MODEL_NAME}'"})
    artifacts = {r["info"]["run_id"]: _gradient_files(stack, r["info"]["run_id"]) for r in runs}
    return {
        "experiment_id": experiment_id,
        "runs": sorted(r["info"]["run_id"] for r in runs),
        "versions": sorted(
            (v["version"], v["run_id"], v["status"]) for v in versions["model_versions"]
        ),
        "aliases": model["registered_model"].get("aliases", []),
        "gradients": artifacts,
    }


def test_down_then_up_keeps_runs_versions_aliases_and_artifacts(deployed: Deployment) -> None:
    stack = deployed.stack
    before = _registry_state(stack)
    assert len(before["runs"]) == 2
    start = time.monotonic()
    stack.sh("docker compose down", timeout=180)
    assert stack.services() == {}
    stack.sh("docker compose up -d", timeout=600)
    stack.wait_healthy("postgres", "mlflow", "server")
    deployed.record("down_up_seconds_to_healthy", time.monotonic() - start)
    after = _registry_state(stack)
    assert after == before
    assert {"alias": ALIAS, "version": _champion_version(deployed)} in after["aliases"]
    assert stack.served_version() == _champion_version(deployed)


@pytest.fixture(scope="module")
def browser() -> None:
    if chromium() is None:
        if os.environ.get("STACKCAST_REQUIRE_DOCKER") == "1":
            pytest.fail("STACKCAST_REQUIRE_DOCKER=1 but no chromium (apt-get install chromium)")
        pytest.skip("no chromium on PATH")


def test_mlflow_ui_shows_the_runs_metrics_and_gradient_map(
    deployed: Deployment, browser: None
) -> None:
    stack = deployed.stack
    state = _registry_state(stack)
    experiment_id, run_id = state["experiment_id"], deployed.results["second"]["run_id"]
    run = stack.rest("GET", "runs/get", params={"run_id": run_id})["run"]
    run_name = run["info"]["run_name"]
    other = stack.rest("GET", "runs/get", params={"run_id": deployed.first.run_id})["run"]
    base = f"{stack.mlflow_url}/#/experiments/{experiment_id}"
    pages = {
        "ui-run-list.png": (f"{base}/runs", [run_name, other["info"]["run_name"]]),
        "ui-run-metrics.png": (f"{base}/runs/{run_id}", [run_name, "val/owa", "val/loss"]),
        "ui-gradient-map.png": (
            f"{base}/runs/{run_id}/artifacts/gradients/map.png",
            ["gradients", "map.png", "map.json"],
        ),
    }
    failures = []
    for name, (url, expected) in pages.items():  # every page, so one run shows them all
        try:
            render(url, stack.artifacts / name, expected)
        except AssertionError as error:
            failures.append(str(error))
    deployed.record("screenshots", sorted(p.name for p in stack.artifacts.glob("ui-*.png")))
    assert failures == []


def test_down_v_removes_the_volumes(deployed: Deployment) -> None:
    stack = deployed.stack
    label = f"label=com.docker.compose.project={stack.project}"
    stack.save_logs()
    volumes = stack.docker("volume", "ls", "-q", "--filter", label).split()
    assert sorted(volumes) == sorted(f"{stack.project}_{v}" for v in ("pgdata", "mlartifacts"))
    stack.sh("docker compose down -v", timeout=180)
    assert stack.docker("volume", "ls", "-q", "--filter", label).split() == []
    assert stack.services() == {}
