"""`stackcast train` arguments for the end-to-end tests: `--set` pairs, and a small model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

TRAIN = [sys.executable, "-m", "stackcast", "train"]


def set_args(settings: Mapping[str, object]) -> list[str]:
    """`--set key=value` for each setting: None is written `null`, booleans `true`/`false`."""

    def text(value: object) -> str:
        if value is None:
            return "null"
        return str(value).lower() if isinstance(value, bool) else str(value)

    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={text(value)}")]


def small_on_file(csv: Path) -> dict[str, object]:
    """A small model (one day in, half a day out, 8 units) trained on the series file `csv`."""
    return {
        "data.source": "file",
        "data.path": csv,
        "model.input_size": 24,
        "model.horizon": 12,
        "model.hidden_size": 8,
        "model.season_length": None,
        "trainer.progress_bar": False,
    }


def run_stackcast(
    args: list[str], cwd: Path, timeout: float = 600, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`stackcast ARGS` in `cwd` as a user runs it: no MLFLOW_* settings, the embedded store.

    `extra_env` adds variables (e.g. `MLFLOW_TRACKING_URI`, `STACKCAST_DEBUG`) to that
    environment.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLFLOW_") and k != "STACKCAST_DEBUG"
    }
    env.update(extra_env or {})
    command = [sys.executable, "-m", "stackcast", *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
