"""The compose stack of a checkout copy, driven as an operator drives it: `docker`, HTTP, REST.

Nothing here imports the project: the stack is reached only through the Docker CLI, the model
server's HTTP API and MLflow's REST API on the published ports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Built by ../shared/tools/container-env.sh where no registry can be reached; elsewhere the
# compose defaults (the registry's images) are pulled.
STAND_INS = {
    "BASE_IMAGE": "stackcast-offline/python:3.11",
    "POSTGRES_IMAGE": "stackcast-offline/postgres:15",
}
MODEL_NAME, ALIAS, EXPERIMENT = "stackcast", "champion", "stackcast"


def docker_problem() -> str | None:
    """Why no Docker engine with Compose v2 can be used here, or None."""
    docker = shutil.which("docker")
    if docker is None:
        return "no `docker` CLI on PATH"
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        compose = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 30 s"
    if info.returncode != 0:
        return f"no Docker engine reachable: {info.stderr.strip()[-300:]}"
    if compose.returncode != 0:
        return f"no Compose v2 (`docker compose`): {compose.stderr.strip()[-300:]}"
    return None


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def readme_deployment_commands() -> list[str]:
    """The shell lines of the README's deployment block (`cp ...`, `docker compose ...`)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "README's Deployment section has no bash block"
    lines = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line.startswith(("cp ", "docker compose "))]


def copy_checkout(destination: Path) -> None:
    """The repository's files as a fresh clone has them (tracked and not ignored), symlinks kept."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (raw.decode() for raw in listed)):
        source, target = ROOT / name, destination / name
        if not source.is_symlink() and not source.exists():  # deleted, not yet committed
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def set_env_file(path: Path, values: dict[str, str]) -> None:
    """Set KEY=VALUE lines of a .env file as an operator edits it (replace, else append)."""
    lines = path.read_text().splitlines()
    for key, value in values.items():
        at = [i for i, line in enumerate(lines) if line.startswith(f"{key}=")]
        if at:
            lines[at[0]] = f"{key}={value}"
        else:
            lines.append(f"{key}={value}")
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Stack:
    """One compose project in `checkout`, with its own name, ports and volumes."""

    checkout: Path
    project: str
    env: dict[str, str]  # the process environment of every `docker` command
    dotenv: dict[str, str]  # what the test wrote into .env (secrets, ports, reload interval)
    artifacts: Path  # logs, screenshots, timings
    timings: dict[str, float] = field(default_factory=dict)

    # --- running commands ---------------------------------------------------------------------

    def sh(self, line: str, timeout: float, check: bool = True) -> str:
        """Run a shell line in the checkout (as an operator types it); log and return its output."""
        start = time.monotonic()
        done = subprocess.run(
            line,
            shell=True,
            cwd=self.checkout,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        seconds = time.monotonic() - start
        with (self.artifacts / "commands.log").open("a") as log:
            log.write(f"$ {line}  # rc={done.returncode}, {seconds:.1f} s\n{done.stdout}\n")
        if check:
            tail = done.stdout[-3000:]
            assert done.returncode == 0, f"`{line}` failed ({done.returncode}):\n{tail}"
        return done.stdout

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        done = subprocess.run(
            ["docker", *args],
            cwd=self.checkout,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr[-2000:]}"
        return done.stdout

    def compose(self, *args: str, timeout: float = 300) -> str:
        return self.sh(" ".join(["docker", "compose", *args]), timeout=timeout)

    # --- containers -------------------------------------------------------------------------

    def services(self) -> dict[str, dict[str, Any]]:
        """`docker compose ps -a` by service: State, Health, ID, ..."""
        out = self.docker("compose", "ps", "-a", "--format", "json")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        if len(rows) == 1 and isinstance(rows[0], list):  # older Compose: one JSON array
            rows = rows[0]
        return {row["Service"]: row for row in rows}

    def container(self, service: str) -> str:
        return str(self.services()[service]["ID"])

    def inspect(self, service: str) -> dict[str, Any]:
        out = self.docker("inspect", self.container(service))
        return dict(json.loads(out)[0])

    def ip(self, service: str) -> str:
        networks = self.inspect(service)["NetworkSettings"]["Networks"]
        return str(next(iter(networks.values()))["IPAddress"])

    def wait_healthy(self, *services: str, timeout: float = 240) -> float:
        """Seconds until every service reports healthy; fails on timeout or an exited container."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            rows = self.services()
            states = {
                s: (rows.get(s, {}).get("State"), rows.get(s, {}).get("Health")) for s in services
            }
            if all(state == ("running", "healthy") for state in states.values()):
                return time.monotonic() - start
            assert time.monotonic() < deadline, f"not healthy after {timeout} s: {states}"
            time.sleep(1)

    def save_logs(self) -> None:
        """Every service's log into the artifacts (kept when the containers are gone)."""
        for service in self.services():
            log = self.docker("compose", "logs", "--no-color", service, timeout=60, check=False)
            (self.artifacts / f"{service}.log").write_text(log)

    # --- HTTP -------------------------------------------------------------------------------

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.dotenv['MLFLOW_PORT']}"

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.dotenv['SERVER_PORT']}"

    @property
    def api_key(self) -> str:
        return self.dotenv["STACKCAST_API_KEY"]

    def rest(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """MLflow's REST API through the published port; the answer's JSON."""
        url = f"{self.mlflow_url}/api/2.0/mlflow/{path}"
        response = httpx.request(method, url, timeout=30, **kwargs)
        assert response.status_code == 200, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return dict(response.json())

    def champion(self) -> dict[str, Any]:
        """The registered version the alias points to."""
        params = {"name": MODEL_NAME, "alias": ALIAS}
        return dict(self.rest("GET", "registered-models/alias", params=params)["model_version"])

    def served_version(self, url: str | None = None) -> str:
        """The version that answers /predict now."""
        response = predict(url or self.server_url, self.api_key)
        assert response.status_code == 200, f"{response.status_code}: {response.text}"
        return str(response.json()["model"]["version"])

    def wait_served(self, version: str, timeout: float = 120) -> float:
        """Seconds until /predict answers from `version`."""
        start = time.monotonic()
        while (served := self.served_version()) != version:
            assert time.monotonic() - start < timeout, f"still serving {served}, not {version}"
            time.sleep(0.5)
        return time.monotonic() - start


def history(points: int = 168) -> list[float]:
    """A week of hourly points with a daily cycle: what the served model expects."""
    return [100.0 + 20.0 * ((hour % 24) / 23.0) + hour * 0.05 for hour in range(points)]


PREDICT_BODY = {"series": [{"id": "a", "history": history()}]}


def predict(url: str, key: str, timeout: float = 35) -> httpx.Response:
    """One POST /predict on a fresh connection (no keep-alive: each request stands alone)."""
    return httpx.post(
        f"{url}/predict", json=PREDICT_BODY, headers={"X-API-Key": key}, timeout=timeout
    )
