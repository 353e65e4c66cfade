"""The stack under test: a checkout copy, its own compose project, ports and volumes.

Without a reachable Docker engine the tests in this folder skip, unless
STACKCAST_REQUIRE_DOCKER=1 (CI), where they fail instead. Test artifacts (screenshots, DOMs,
logs, timings in results.json) go to $STACKCAST_CONTAINER_ARTIFACTS, or to a temporary folder
named in the first line the stack prints.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.stack import (
    STAND_INS,
    Stack,
    copy_checkout,
    docker_problem,
    free_port,
    image_exists,
)

REQUIRE = os.environ.get("STACKCAST_REQUIRE_DOCKER") == "1"
RELOAD_INTERVAL = 2  # seconds between the server's alias checks (1 is the least it accepts)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = docker_problem()
    if problem is not None:
        if REQUIRE:
            pytest.fail(f"STACKCAST_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("STACKCAST_CONTAINER_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("container-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def stack(
    docker_engine: None, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The README's deployment in a copy of this checkout; `down -v` and the image removed after."""
    checkout = tmp_path_factory.mktemp("checkout")
    copy_checkout(checkout)
    project = f"stackcast-test-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": project,
        "STACKCAST_IMAGE": f"{project}:cpu",  # never replaces an operator's stackcast:cpu
    }
    if all(image_exists(image) for image in STAND_INS.values()):
        env.update(STAND_INS)
        env["TORCH_INDEX_URL"] = ""  # the stand-in finds the CPU wheel through PIP_FIND_LINKS
    elif REQUIRE:
        # Without the stand-ins the registry's images are pulled: fine where a registry is
        # reachable, but CI's machines reach none.
        missing = [image for image in STAND_INS.values() if not image_exists(image)]
        print(f"stand-in images missing ({missing}): using the registry's")
    dotenv = {
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "STACKCAST_API_KEY": secrets.token_hex(24),
        "MLFLOW_PORT": str(free_port()),
        "SERVER_PORT": str(free_port()),
        "STACKCAST_RELOAD_INTERVAL": str(RELOAD_INTERVAL),
    }
    stack = Stack(checkout, project, env, dotenv, artifacts)
    events = subprocess.Popen(  # the engine's container events: start, health, die, kill
        [
            "docker",
            "events",
            "--filter",
            "type=container",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--format",
            "{{json .}}",
        ],
        stdout=(artifacts / "events.jsonl").open("w"),
        stderr=subprocess.DEVNULL,
    )
    print(f"\ncontainer test: project {project}, artifacts in {artifacts}")
    try:
        yield stack
    finally:
        stack.save_logs()  # when a test failed before test_down_v_removes_the_volumes
        start = time.monotonic()
        stack.docker("compose", "down", "-v", "--remove-orphans", timeout=180, check=False)
        stack.docker("image", "rm", f"{project}:cpu", check=False)
        stack.timings["teardown_s"] = time.monotonic() - start
        events.terminate()
        events.wait(timeout=30)
