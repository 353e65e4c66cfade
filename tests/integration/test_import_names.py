"""An application with its own `models`, `training` and `service` modules loads and serves ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stackcast.service.loader import ModelSource, Registry
from tests.conftest import ServedStore

pytestmark = pytest.mark.slow

# The application: three modules with the generic names, imported before any model is loaded.
_APP_MODULES = {
    "models.py": "class User:\n    pass\n",
    "training.py": "SCHEDULE = 'weekly'\n",
    "service.py": "def handler():\n    return 'app'\n",
}
_APP = """
import json, sys
import models, training, service  # the application's own modules
import mlflow
import numpy as np
from stackcast.service.loader import ModelSource, Registry

windows = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
pyfunc = mlflow.pyfunc.load_model(sys.argv[1])
registry = Registry(mlflow.get_tracking_uri(), ModelSource.parse(sys.argv[1]))
served = registry.load(registry.current(), "cpu").network
import torch
with torch.inference_mode():
    direct = served(torch.from_numpy(windows)).numpy()
assert models.User and training.SCHEDULE == "weekly" and service.handler() == "app"
print(json.dumps({"pyfunc": pyfunc.predict(windows).tolist(), "served": direct.tolist()}))
"""


def test_an_app_with_its_own_models_module_loads_and_serves_stackcast(
    served_store: ServedStore, tmp_path: Path
) -> None:
    for name, text in _APP_MODULES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "app.py").write_text(_APP)
    windows = np.random.default_rng(3).uniform(10, 500, (3, served_store.config.input_size))
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": served_store.tracking_uri,
        "PYTHONPATH": str(tmp_path),  # the app's folder first, as `python app.py` would have it
    }
    done = subprocess.run(
        [sys.executable, "app.py", served_store.uri, json.dumps(windows.tolist())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    registry = Registry(served_store.tracking_uri, ModelSource.parse(served_store.uri))
    network = registry.load(registry.current(), "cpu").network
    with torch.inference_mode():
        expected = network(torch.from_numpy(windows.astype(np.float32))).numpy()
    np.testing.assert_allclose(answer["pyfunc"], expected, rtol=1e-6)
    np.testing.assert_allclose(answer["served"], expected, rtol=1e-6)


def test_the_distribution_claims_no_generic_top_level_name() -> None:
    """Only `stackcast` is importable from the installed project, not `models` & co."""
    names = ("models", "training", "service")
    code = f"import importlib.util as u; print([u.find_spec(n) is None for n in {names}])"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "[True, True, True]", done.stderr
