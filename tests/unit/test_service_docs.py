"""`/docs` and `/redoc` load only what the app serves itself: they work with no network."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stackcast.service import docs
from stackcast.service.docs import DocsAssetsMissingError, serve_docs
from tests.html_links import read_page

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def _app() -> FastAPI:
    app = FastAPI(title="stackcast")
    serve_docs(app)
    return app


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_local_assets_only(path: str) -> None:
    client = TestClient(_app())
    response = client.get(path)
    assert response.status_code == 200
    page = read_page(response.text)
    assert "stackcast" in page.title
    assert page.loads, "the page loads no script or stylesheet"
    assert "cdn.jsdelivr" not in response.text and "googleapis" not in response.text
    for url in page.loads:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
        assert len(asset.content) > 1000, url  # the real bundle, not a stub


def test_swagger_ui_page_loads_the_bundle_and_its_css() -> None:
    page = read_page(TestClient(_app()).get("/docs").text)
    assert {url.rsplit("/", 1)[-1] for url in page.loads} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
    }


def test_the_default_cdn_pages_are_gone() -> None:
    paths = [getattr(route, "path", None) for route in _app().routes]
    assert paths.count("/docs") == 1 and paths.count("/redoc") == 1
    assert paths.count("/docs/oauth2-redirect") == 1


def test_assets_follow_the_root_path_behind_a_proxy() -> None:
    client = TestClient(_app(), root_path="/forecast")
    page = read_page(client.get("/docs").text)
    assert all(url.startswith("/forecast/static/docs/") for url in page.loads), page.loads
    assert "'/forecast/openapi.json'" in client.get("/docs").text


def test_missing_assets_stop_the_app_naming_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docs, "ASSETS", (*docs.ASSETS, "swagger-ui-v9.js"))
    with pytest.raises(DocsAssetsMissingError, match=r"fastapi-offline .* no swagger-ui-v9\.js"):
        serve_docs(FastAPI())


def test_an_app_without_docs_is_refused() -> None:
    with pytest.raises(ValueError, match="docs_url"):
        serve_docs(FastAPI(docs_url=None))
