"""Headless Chromium (Debian's `chromium` package): a page's screenshot and its rendered DOM."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

# Headless screenshots leave a cross-origin iframe blank (it renders in another process, which
# the virtual-time budget does not drive); MLflow shows HTML artifacts in a sandboxed iframe.
IN_PROCESS_FRAMES = ("--disable-site-isolation-trials", "--disable-features=site-per-process")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(
    binary: str, url: str, extra: list[str], budget_ms: int
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="stackcast-chromium-") as profile:
        return subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",  # root in CI; the page is our own MLflow UI
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=1440,1000",
                f"--virtual-time-budget={budget_ms}",  # lets the single-page app fetch and render
                *extra,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


def render(
    url: str, png: Path, expected: list[str], attempts: int = 3, flags: Sequence[str] = ()
) -> str:
    """The page's DOM once every `expected` text is in it; its screenshot saved to `png`.

    Retries with a longer virtual-time budget (a loaded machine renders slower), bounded.
    `flags` go to Chromium as well (e.g. `IN_PROCESS_FRAMES`).
    """
    binary = chromium()
    assert binary is not None, "no chromium on PATH (apt-get install chromium)"
    dom, missing = "", list(expected)
    for attempt in range(attempts):
        budget = 15000 * (attempt + 1)
        done = _run(binary, url, ["--dump-dom", *flags], budget)
        dom = done.stdout
        missing = [text for text in expected if text not in dom]
        if not missing:
            break
    shot = _run(binary, url, [f"--screenshot={png}", *flags], 15000 * attempts)
    assert png.is_file() and png.stat().st_size > 0, f"no screenshot of {url}: {shot.stderr[-500:]}"
    png.with_suffix(".html").write_text(dom)
    assert not missing, f"{url}: {missing} not in the rendered page (DOM saved beside {png.name})"
    return dom
