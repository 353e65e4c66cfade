"""`/docs` and `/redoc` from assets the service serves itself: they work on an air-gapped host.

FastAPI's default pages load Swagger UI and ReDoc from a CDN (a blank page offline). This follows
FastAPI's "Self-hosting JavaScript and CSS for docs" recipe: the default routes go, the assets are
mounted as static files, and the pages are rendered by FastAPI's own `get_swagger_ui_html` and
`get_redoc_html` pointing at them. The assets come from the `fastapi-offline` package, which
ships current Swagger UI 5 (it renders FastAPI's OpenAPI 3.1; `swagger-ui-bundle` ships 4.15,
which does not) and ReDoc builds; LitServe creates the app, so that package's `FastAPIOffline`
constructor can't be used, only its files.

Like `/openapi.json`, the pages and assets need no API key: they describe the API, hold no data.
"""

from __future__ import annotations

from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/static/docs"  # where the assets are mounted
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"
ASSETS = (SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON)
REDOC_PATH = "/redoc"


class DocsAssetsMissingError(RuntimeError):
    """The installed `fastapi-offline` does not hold the files the docs pages load."""


def assets_dir() -> Path:
    """The directory of `fastapi-offline`'s bundled assets; fails loudly if one is missing.

    The directory is that package's data, not an API it documents: a release that moves it
    stops the server at start, naming the version, rather than serving a blank page.
    """
    directory = Path(str(files("fastapi_offline") / "static"))
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        raise DocsAssetsMissingError(
            f"fastapi-offline {version('fastapi-offline')} has no {', '.join(missing)} in"
            f" {directory}: install a version that does (pyproject.toml pins the range)"
        )
    return directory


def serve_docs(app: FastAPI) -> None:
    """Replace `app`'s CDN-loading docs pages with pages whose assets `app` serves itself."""
    if app.openapi_url is None or app.docs_url is None:
        raise ValueError("the app must serve its schema and docs (openapi_url, docs_url)")
    docs_url, openapi_url = app.docs_url, app.openapi_url
    redirect_url = app.swagger_ui_oauth2_redirect_url or f"{docs_url}/oauth2-redirect"
    defaults = {path for path in (docs_url, redirect_url, app.redoc_url) if path}
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in defaults
    ]
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"

    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{request.scope.get('root_path', '')}{openapi_url}",
            title=f"{app.title} - API docs",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=asset(request, SWAGGER_JS),
            swagger_css_url=asset(request, SWAGGER_CSS),
            swagger_favicon_url=asset(request, FAVICON),
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=f"{request.scope.get('root_path', '')}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, REDOC_JS),
            redoc_favicon_url=asset(request, FAVICON),
            with_google_fonts=False,  # fonts.googleapis.com is not reachable offline either
        )

    app.add_api_route(docs_url, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(redirect_url, swagger_ui_redirect, methods=["GET"], include_in_schema=False)
    app.add_api_route(REDOC_PATH, redoc, methods=["GET"], include_in_schema=False)
