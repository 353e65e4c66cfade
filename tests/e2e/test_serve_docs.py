"""`/docs` and `/redoc` rendered in a browser from `stackcast serve`, other hosts unreachable."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from tests.conftest import ServedStore
from tests.container.browser import chromium
from tests.e2e.servers import stackcast_server

pytestmark = pytest.mark.slow

# Every name resolves to nothing but the server's own address: a page that needs a CDN stays blank.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


@pytest.fixture(scope="module")
def server_url(
    served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with stackcast_server(served_store, tmp_path_factory.mktemp("docs")) as url:
        yield url


def _rendered(url: str, budget_ms: int) -> str:
    binary = chromium()
    if binary is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="stackcast-chromium-") as profile:
        done = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",  # root in CI; the page is our own server's
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                f"--user-data-dir={profile}",
                OFFLINE,
                f"--virtual-time-budget={budget_ms}",  # lets Swagger UI fetch the schema and render
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return done.stdout


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/docs", ["stackcast", "/predict", "±1e15", "415", "ForecastRequest"]),  # schemas by name
        ("/redoc", ["stackcast", "/predict", "±1e15", "415"]),
    ],
)
def test_docs_render_with_no_network(server_url: str, path: str, expected: list[str]) -> None:
    dom, missing = "", expected
    for budget_ms in (15000, 30000):  # a loaded machine renders slower
        dom = _rendered(server_url + path, budget_ms)
        missing = [text for text in expected if text not in dom]
        if not missing:
            break
    assert not missing, f"{path}: {missing} not in the rendered page: {dom[-2000:]}"
