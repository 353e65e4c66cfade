"""The deployment files hold together: spec-valid, real commands, secrets, health, image contents.

No Docker engine is needed: the files are read as Compose reads them (tests/compose_file.py) and
each command is parsed by the CLI that will run it. tests/e2e/test_compose_live.py runs them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from stackcast.service.settings import ENV_PREFIX, ServeSettings, load_settings
from stackcast.training.config import load_config
from tests.compose_file import (
    COMPOSE,
    DOCKERFILE,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    GPU_OVERRIDE,
    ROOT,
    MissingVariableError,
    load,
    parse_command,
    read_env_file,
    variables,
)

SECRETS = ("POSTGRES_PASSWORD", "STACKCAST_API_KEY")
LONG_RUNNING = ("postgres", "mlflow", "server")


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(env: dict[str, str]) -> dict[str, Any]:
    return load(COMPOSE, env=env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def _schema() -> dict[str, Any]:
    return dict(json.loads((ROOT / "schemas" / "compose-spec.json").read_text()))


def _container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(port).rsplit(":", 1)[1].split("/")[0]) for port in service.get("ports", [])}


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


# --- the Compose files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files", [(COMPOSE,), (GPU_OVERRIDE,), (COMPOSE, GPU_OVERRIDE)], ids=["base", "gpu", "merged"]
)
def test_compose_files_match_the_compose_spec(files: tuple[Path, ...], env: dict[str, str]) -> None:
    jsonschema.validate(load(*files, env=env), _schema())


def test_the_schema_rejects_an_invalid_file() -> None:
    bad = {"services": {"server": {"image": "x", "restart_policy_typo": "always"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _schema())
    unquoted_no = yaml.safe_load("services: {trainer: {image: x, restart: no}}")  # YAML: False
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(unquoted_no, _schema())


def test_the_four_services_and_their_roles(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "mlflow", "trainer", "server"}
    assert services["trainer"]["profiles"] == ["train"]  # one-shot, not started by `up`
    assert services["trainer"]["restart"] == "no"
    for name in LONG_RUNNING:
        assert "profiles" not in services[name]
        assert services[name]["restart"] == "unless-stopped"
    # One image for MLflow, the trainer and the server; built from this repo's Dockerfile.
    built = {services[name]["image"] for name in ("mlflow", "trainer", "server")}
    assert len(built) == 1
    assert all(services[n]["build"]["context"] == "." for n in ("mlflow", "trainer", "server"))


def test_every_service_command_parses_with_its_own_cli(
    services: dict[str, dict[str, Any]],
) -> None:
    commands = {n: parse_command(s["command"]) for n, s in services.items() if "command" in s}
    assert {n: path for n, (path, _) in commands.items()} == {
        "mlflow": ["server"],
        "trainer": ["train"],
        "server": ["serve"],
    }
    # The parsers are strict: a misspelled option or command would fail here, not at deploy time.
    with pytest.raises(Exception, match="No such option"):
        parse_command(["stackcast", "serve", "--model-url", "models:/stackcast@champion"])
    with pytest.raises(Exception, match="No such option"):
        parse_command(["mlflow", "server", "--allowed-host", "mlflow:5000"])
    with pytest.raises(Exception, match="No such command"):
        parse_command(["stackcast", "serv"])


def test_trainer_config_loads_and_registers_what_the_server_serves(
    services: dict[str, dict[str, Any]],
) -> None:
    _, params = parse_command(services["trainer"]["command"])
    config = load_config(ROOT / params["config"], list(params["set_"] or []))  # /app is ROOT
    assert config.data.source == "m4_hourly"
    assert (ROOT / "data" / "m4-hourly" / "Hourly-train.csv.gz").is_file()
    _, served = parse_command(services["server"]["command"])
    assert served["model_uri"] == f"models:/{config.registry.model_name}@{config.registry.alias}"
    tracking = services["trainer"]["environment"]["MLFLOW_TRACKING_URI"]
    assert tracking == services["server"]["environment"]["MLFLOW_TRACKING_URI"]


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, GPU_OVERRIDE)], ids=["cpu", "gpu"])
def test_server_settings_accept_the_compose_environment(
    files: tuple[Path, ...], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = load(*files, env=env)["services"]["server"]
    environment = {k: str(v) for k, v in server["environment"].items()}
    settable = {f"{ENV_PREFIX}{name.upper()}" for name in ServeSettings.model_fields}
    for name in environment:  # an unknown STACKCAST_* variable would be silently ignored
        assert not name.startswith(ENV_PREFIX) or name in settable, name
    for name in [*settable, "MLFLOW_TRACKING_URI"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    _, params = parse_command(server["command"])
    settings = load_settings(**{k: v for k, v in params.items() if v is not None})
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == env["STACKCAST_API_KEY"]
    assert settings.host == "0.0.0.0"  # reachable through the published port
    assert _container_ports(server) == {settings.port}
    tracking = urlsplit(settings.tracking_uri)
    mlflow = load(*files, env=env)["services"]["mlflow"]
    _, mlflow_params = parse_command(mlflow["command"])
    assert (tracking.hostname, tracking.port) == ("mlflow", mlflow_params["port"])
    expected = "cuda" if GPU_OVERRIDE in files else "auto"
    assert settings.accelerator == expected


def test_mlflow_server_stores_in_postgres_and_the_artifact_volume(
    services: dict[str, dict[str, Any]], env: dict[str, str]
) -> None:
    from mlflow.server.security_utils import is_allowed_host_header

    mlflow, postgres = services["mlflow"], services["postgres"]
    _, params = parse_command(mlflow["command"])
    store = urlsplit(params["backend_store_uri"])
    assert store.scheme == "postgresql" and store.hostname == "postgres" and store.port == 5432
    assert store.username == postgres["environment"]["POSTGRES_USER"]
    assert store.password == env["POSTGRES_PASSWORD"]
    assert store.path == "/" + postgres["environment"]["POSTGRES_DB"]
    assert params["serve_artifacts"] is True  # clients up/download through the server
    volumes = {v.split(":")[0]: v.split(":")[1] for v in mlflow["volumes"]}
    assert volumes == {"mlartifacts": params["artifacts_destination"]}
    assert set(volumes) | {"pgdata"} == set(yaml.safe_load(COMPOSE.read_text())["volumes"])
    assert params["host"] == "0.0.0.0" and _container_ports(mlflow) == {params["port"]}

    # MLflow 3 answers 403 to unknown Host headers: every client's must pass, others not.
    allowed = params["allowed_hosts"].split(",")
    clients = [
        urlsplit(services[n]["environment"]["MLFLOW_TRACKING_URI"]).netloc
        for n in ("trainer", "server")
    ]
    health = re.search(r"https?://([^/']+)/health", mlflow["healthcheck"]["test"][-1])
    assert health is not None
    browser = f"localhost:{env['MLFLOW_PORT']}"
    for host in [*clients, health.group(1), browser, "127.0.0.1:5000"]:
        assert is_allowed_host_header(allowed, host), host
    assert not is_allowed_host_header(allowed, "attacker.example:5000")


def test_required_secrets_are_demanded_with_a_message(env: dict[str, str]) -> None:
    text = COMPOSE.read_text()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"{name} is not used"
        for use in uses:  # never a default, never optional
            assert use.startswith(":?") and len(use) > 10, f"${{{name}{use}}}"
        without = {k: v for k, v in env.items() if k != name}
        with pytest.raises(MissingVariableError, match=name):
            load(COMPOSE, env=without)
        with pytest.raises(MissingVariableError, match=name):
            load(COMPOSE, env={**env, name: ""})  # empty counts as missing under :?


def test_long_running_services_are_health_checked(services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert not check.get("disable", False)
        assert check["test"][0] == "CMD" and _seconds(check["interval"]) <= 30
        program, *args = check["test"][1:]
        if program == "python":
            assert args[0] == "-c"
            compile(args[1], f"{name} healthcheck", "exec")
            assert "/health'" in args[1]
        else:
            env = services[name]["environment"]
            assert [program, *args] == [
                "pg_isready",
                "-U",
                env["POSTGRES_USER"],
                "-d",
                env["POSTGRES_DB"],
            ]
    # The image's check probes the model server: the other users of the image turn it off or
    # replace it.
    assert services["trainer"]["healthcheck"] == {"disable": True}


def test_dependencies_wait_until_healthy(services: dict[str, dict[str, Any]]) -> None:
    expected = {"mlflow": {"postgres"}, "trainer": {"mlflow"}, "server": {"mlflow"}}
    assert {n: set(s.get("depends_on", {})) for n, s in services.items() if "depends_on" in s} == (
        expected
    )
    for name, deps in expected.items():
        for dep in deps:
            assert services[name]["depends_on"][dep] == {"condition": "service_healthy"}
            assert "test" in services[dep]["healthcheck"]


def test_server_stops_gracefully(services: dict[str, dict[str, Any]]) -> None:
    server = services["server"]
    assert server["stop_signal"] == "SIGTERM"  # service/serve.py drains on it
    assert server["init"] is True  # PID 1 forwards it to `stackcast serve` and reaps children
    request_timeout = ServeSettings.model_fields["request_timeout"].default
    assert _seconds(server["stop_grace_period"]) > request_timeout


def test_env_example_lists_exactly_the_variables_used() -> None:
    used = variables(COMPOSE.read_text()) | variables(GPU_OVERRIDE.read_text())
    listed = set(read_env_file(ENV_EXAMPLE))
    assert used == listed, {"missing": used - listed, "unused": listed - used}


def test_gpu_override_reserves_gpus_and_serves_on_cuda(env: dict[str, str]) -> None:
    merged = load(COMPOSE, GPU_OVERRIDE, env=env)["services"]
    cpu = load(COMPOSE, env=env)["services"]
    for name in ("trainer", "server"):
        devices = merged[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": "1", "capabilities": ["gpu"]}]
        assert merged[name]["image"] != cpu[name]["image"]  # the CUDA build has its own tag
        assert merged[name]["build"]["args"]["TORCH_VARIANT"].startswith("cu")
        assert merged[name]["command"] == cpu[name]["command"]  # only devices change
    assert merged["server"]["environment"]["STACKCAST_ACCELERATOR"] == "cuda"
    assert merged["server"]["environment"]["STACKCAST_API_KEY"] == env["STACKCAST_API_KEY"]
    assert merged["mlflow"] == cpu["mlflow"] and merged["postgres"] == cpu["postgres"]


def test_docker_compose_config_accepts_the_files() -> None:
    docker = shutil.which("docker")
    probe = [docker or "docker", "compose", "version"]
    if docker is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("no `docker compose` CLI on this machine")
    for files in (["-f", str(COMPOSE)], ["-f", str(COMPOSE), "-f", str(GPU_OVERRIDE)]):
        command = [docker, "compose", *files, "--env-file", str(ENV_EXAMPLE)]
        done = subprocess.run([*command, "config", "-q"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


# --- the image ---------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent decides."""

    def regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return out

    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        if any(re.fullmatch(regex(body), c) for c in candidates):
            ignored = not negate
    return ignored


def test_image_runs_as_a_non_root_user_and_bakes_in_no_secret() -> None:
    instructions = _instructions()
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmd_index = max(i for i, (op, _) in enumerate(instructions) if op == "CMD")
    user_index = max(i for i, (op, _) in enumerate(instructions) if op == "USER")
    assert user_index < cmd_index
    for op, args in instructions:
        if op in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|API_KEY|SECRET|TOKEN", args, re.I), args
    assert not any(op == "COPY" and ".env" in args for op, args in instructions)


def test_image_installs_cpu_torch_by_default_and_the_postgres_extra() -> None:
    instructions = _instructions()
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == "2.13.*" and args["TORCH_VARIANT"] == "cpu"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/${TORCH_VARIANT}"
    runs = [a for op, a in instructions if op == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if '"torch==${TORCH_VERSION}"' in r)
    assert '--index-url "${TORCH_INDEX_URL}"' in runs[torch_at]
    deps_at = next(i for i, r in enumerate(runs) if "['optional-dependencies']['postgres']" in r)
    assert torch_at < deps_at  # torch first: the dependencies must not pull the CUDA build
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("psycopg") for d in pyproject["optional-dependencies"]["postgres"])
    assert any("pip install --no-deps -e ." in r for r in runs)


def test_image_ships_the_code_the_default_config_and_the_m4_data() -> None:
    copied = {
        source.rstrip("/")
        for op, args in _instructions()
        if op == "COPY"
        for source in args.split()[:-1]
        if not source.startswith("--")
    }
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packages = {name.rstrip("*") for name in find["find"]["include"]}
    assert packages | {"configs", "data", "pyproject.toml", "README.md"} <= copied

    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = [
        p.relative_to(ROOT).as_posix()
        for top in copied
        for p in ([ROOT / top] if (ROOT / top).is_file() else (ROOT / top).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert "data/m4-hourly/Hourly-train.csv.gz" in needed
    assert "configs/m4_hourly.yaml" in needed
    assert [p for p in needed if _ignored(p, patterns)] == []
    for kept_out in (
        ".env",
        ".venv/bin/python",
        "mlflow.db",
        "mlartifacts/1/model.bin",
        "checkpoints/run/best.ckpt",
        ".git/config",
        "tests/conftest.py",
        "training/__pycache__/m4.cpython-311.pyc",
    ):
        assert _ignored(kept_out, patterns), kept_out


def test_image_healthcheck_probes_the_server_health_endpoint() -> None:
    checks = [args for op, args in _instructions() if op == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    assert "--start-period=" in options
    program, flag, code = json.loads(command)
    assert (program, flag) == ("python", "-c")
    compile(code, "HEALTHCHECK", "exec")
    assert "/health" in code and "STACKCAST_PORT" in code


def test_base_images_and_torch_source_default_to_what_a_user_with_internet_gets(
    env: dict[str, str],
) -> None:
    """Air-gapped sites override them (README); nothing test-only is a default."""
    instructions = _instructions()
    assert instructions[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    assert [args for op, args in instructions if op == "FROM"] == ["${BASE_IMAGE}"]
    runs = [a for op, a in instructions if op == "RUN"]
    # Empty TORCH_INDEX_URL: pip's own configuration in the base image picks the wheel.
    assert any('${TORCH_INDEX_URL:+--index-url "${TORCH_INDEX_URL}"}' in r for r in runs)
    for files in ((COMPOSE,), (COMPOSE, GPU_OVERRIDE)):
        services = load(*files, env=env)["services"]
        assert services["postgres"]["image"] == "postgres:17-alpine"
        for name in ("mlflow", "trainer", "server"):
            args = services[name]["build"]["args"]
            assert args["BASE_IMAGE"] == "python:3.11-slim"
            # No value: the Dockerfile's default, PyTorch's index for TORCH_VARIANT (CPU or CUDA).
            assert args["TORCH_INDEX_URL"] is None
    stand_in = {"BASE_IMAGE": "local/python", "POSTGRES_IMAGE": "local/postgres"}
    services = load(COMPOSE, env={**env, **stand_in})["services"]
    assert services["postgres"]["image"] == "local/postgres"
    assert services["server"]["build"]["args"]["BASE_IMAGE"] == "local/python"
    for path in (COMPOSE, GPU_OVERRIDE, ENV_EXAMPLE, DOCKERFILE):
        assert "stackcast-offline" not in path.read_text(), path.name
