"""The gradient map in MLflow's UI, as `make ui` serves it, seen by headless Chromium.

The artifact preview must show `gradients/map.png` at its natural size (not shrunk to the pane,
which made the labels unreadable): the screenshot holds the artifact's pixels one to one. And
`gradients/map.html` must draw its heatmaps inside MLflow's sandboxed iframe (plotly.js
embedded, nothing fetched). Skips without Debian's `chromium`, unless STACKCAST_REQUIRE_DOCKER=1
(CI installs it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image

from stackcast.training.gradient_report import MAP_HTML, MAP_PNG, log_gradient_report
from stackcast.training.telemetry import GradientMap, judge
from tests.conftest import in_store
from tests.container.browser import IN_PROCESS_FRAMES, chromium, render
from tests.e2e.servers import free_port, running_server

pytestmark = pytest.mark.slow


@pytest.fixture
def browser() -> None:
    if chromium() is None:
        if os.environ.get("STACKCAST_REQUIRE_DOCKER") == "1":
            pytest.fail("STACKCAST_REQUIRE_DOCKER=1 but no chromium (apt-get install chromium)")
        pytest.skip("no chromium on PATH")


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)  # (H, W, 3)


def _unscaled_at(screen: np.ndarray, image: np.ndarray) -> tuple[int, int] | None:
    """Top-left of `image` in `screen`, found by its most varied row shown pixel for pixel."""
    row = int(np.argmax([len(np.unique(r, axis=0)) for r in image]))  # through a heatmap
    line, width = image[row], image.shape[1]
    for y in range(screen.shape[0]):
        starts = np.abs(screen[y, : screen.shape[1] - width + 1] - line[0]).max(axis=1) <= 2
        for x in np.flatnonzero(starts):
            if np.abs(screen[y, x : x + width] - line).max() <= 2:
                return y - row, int(x)
    return None


def _coloured(pixels: np.ndarray) -> int:
    """Pixels far from grey: the heatmaps' colours, not the UI's text and rules."""
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())


def test_the_gradient_map_reads_at_its_natural_size_in_the_artifact_preview(
    browser: None, tmp_path: Path
) -> None:
    maps = [  # a run's worth: 2 layers x 24 steps, decaying back through time, 20 maps
        GradientMap(step, [[0.9 ** (24 - t) * (k + 1) for t in range(24)] for k in range(2)])
        for step in range(0, 400, 20)
    ]
    with in_store(tmp_path) as uri, mlflow.start_run() as run:
        log_gradient_report(maps, judge(maps, None, 1e-3, 1e3))
        artifact = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id)) / MAP_PNG
    port = free_port()
    ui = [  # what `make ui` runs, on this test's store
        str(Path(sys.executable).with_name("mlflow")),
        *("ui", "--backend-store-uri", uri, "--port", str(port), "--workers", "1"),
    ]
    url = f"http://127.0.0.1:{port}"
    with running_server(ui, f"{url}/health", tmp_path / "ui.log"):
        pages = f"{url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}/artifacts"
        shot, html_shot = tmp_path / "ui-gradient-map.png", tmp_path / "ui-gradient-map-html.png"
        render(f"{pages}/{MAP_PNG}", shot, ["map.png", "map.html", "map.json"], attempts=2)
        render(f"{pages}/{MAP_HTML}", html_shot, ["mlflow-html-iframe"], 2, IN_PROCESS_FRAMES)
    screen, image = _rgb(shot), _rgb(artifact)
    found = _unscaled_at(screen, image)
    assert found is not None, f"{MAP_PNG} is not shown at its natural size (see {shot})"
    top, left = found
    visible = screen[max(top, 0) : top + image.shape[0], left : left + image.shape[1]]
    shown = image[max(-top, 0) : max(-top, 0) + visible.shape[0]]
    assert visible.shape[0] > image.shape[0] // 2  # most of the figure is on screen
    assert np.abs(visible - shown).max() <= 2, "the preview alters the figure's pixels"

    pane = (slice(max(top, 0), None), slice(left, left + image.shape[1]))  # the preview pane
    drawn = _coloured(_rgb(html_shot)[pane])
    assert drawn > _coloured(visible) // 4, f"{MAP_HTML} draws no heatmap (see {html_shot})"
