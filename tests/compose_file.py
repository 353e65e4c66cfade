"""The deployment files as Docker Compose reads them, for tests that cannot run Docker.

`.env` values, `${VAR}` interpolation and `-f base -f override` merging follow the Compose
specification for the constructs our files use; `parse_command` parses a service's command with
the real CLI's own click parser, so a misspelled option or subcommand fails as it would in the
container.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
GPU_OVERRIDE = ROOT / "docker-compose.gpu.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# $$ | ${NAME} | ${NAME:-default} ${NAME-default} ${NAME:?error} ${NAME?error} | $NAME
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariableError(ValueError):
    """A `${VAR:?message}` whose variable is unset or empty: Compose stops with the message."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped, quotes removed)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def variables(text: str) -> set[str]:
    """Names of the variables that `text` interpolates (`$$` is a literal dollar)."""
    return {m["braced"] or m["named"] for m in _VARIABLE.finditer(text) if not m["escaped"]}


def _substitute(text: str, env: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        value, op, arg = env.get(name), match["op"], match["arg"]
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and unset:
            raise MissingVariableError(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and unset:
            return _substitute(arg, env)
        return value or ""

    return _VARIABLE.sub(one, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """`node` (a parsed YAML tree) with every string interpolated from `env`."""
    if isinstance(node, str):
        return _substitute(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


def merge(base: Any, override: Any) -> Any:
    """`-f base -f override`: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def load(*files: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The merged, interpolated compose model of `files`, as `docker compose -f ... config`."""
    model: dict[str, Any] = {}
    for path in files:
        model = merge(model, yaml.safe_load(path.read_text()))
    result: dict[str, Any] = interpolate(model, env)
    return result


def _stackcast_cli() -> Any:
    import typer

    from stackcast.cli import app

    return typer.main.get_command(app)  # Typer's own fork of click's Group


def _mlflow_cli() -> Any:
    from mlflow.cli import cli

    return cli  # a click.Group


CLIS: dict[str, Callable[[], Any]] = {"stackcast": _stackcast_cli, "mlflow": _mlflow_cli}


def parse_command(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse `argv` with its program's own (click) parser, as running it would.

    Returns:
        The subcommand path (`["serve"]`, `["server"]`) and the leaf command's parsed options.

    Raises:
        Exception: the parser's UsageError for an unknown subcommand or option, a missing or
            malformed value, an extra argument (click's or Typer's fork of it, same messages).
    """
    program, *args = argv
    assert program in CLIS, f"no parser known for {program!r}"
    context = CLIS[program]().make_context(program, args, resilient_parsing=False)
    path: list[str] = []
    while hasattr(context.command, "resolve_command"):  # a group: descend into the subcommand
        # Group.parse_args leaves the subcommand's name in _protected_args (click and Typer's
        # fork alike; click's public `protected_args` is deprecated, Typer's fork lacks it).
        rest = [*context._protected_args, *context.args]
        name, command, rest = context.command.resolve_command(context, rest)
        path.append(name)
        context = command.make_context(name, rest, parent=context, resilient_parsing=False)
    return path, dict(context.params)
