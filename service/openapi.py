"""What `/openapi.json` says beyond what FastAPI infers from the routes.

FastAPI documents every route as answering JSON with a 200 (and a 422 where it validates a
body). The truth, for clients generated from the schema and for schemathesis: `/health` and
`/metrics` answer plain text, `/` an HTML page; with an API key configured, the routes that
check it answer 401 without it; `/predict` answers 400 for an unparsable body, 413 for an
oversized one, 415 for one not sent as JSON, 503 when its inference worker died with it, and
504 past the request timeout, each with a `{"detail": ...}` body. LitServe registers
`/predict` and `/health` itself, so they are described here, after the routes exist,
following FastAPI's "Extending OpenAPI" recipe: the schema is amended once and cached. The
title and description (what `/docs` shows first) are set here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import BaseRoute

from stackcast.service.media_type import JSON
from stackcast.service.schema import MAX_ABS_TEXT

TITLE = "stackcast"
DESCRIPTION = f"""Point forecasts from a stacked recurrent forecaster (LSTM, GRU or RNN) that was
trained with Lightning and registered in MLflow.

`POST /predict` takes one or many series as JSON, sent with `Content-Type: {JSON}` (any other
body gets a 415). Every history value is a finite JSON number within ±{MAX_ABS_TEXT}
(strings, booleans, NaN and Infinity get a 422): the model computes in float32, and larger
values overflow it. History lengths, the horizon and series per request are bounded by the
served model and the settings; the schema below gives the bounds in force.

`GET /health`: `ok` once every inference worker is ready. `GET /info`: the served model version
and the server's settings. `GET /metrics`: Prometheus text."""

ERROR_SCHEMA = "Error"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
_ERROR_BODY = {
    "title": ERROR_SCHEMA,
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "What went wrong."}},
    "required": ["detail"],
}
_TEXT = {"schema": {"type": "string"}}

PLAIN_TEXT: dict[str, dict[int, tuple[str, str]]] = {
    "/": {200: ("text/html", "What this server is, with links to `/docs`, `/health`, `/info`.")},
    "/health": {
        200: ("text/plain", "`ok`: every inference worker is ready."),
        503: ("text/plain", "`not ready`: a worker is starting or being restarted."),
    },
    "/metrics": {200: (CONTENT_TYPE_LATEST, "Prometheus text format.")},
}
ERRORS: dict[str, dict[int, str]] = {
    "/predict": {
        400: "A body FastAPI cannot parse at all (e.g. bytes that are not UTF-8 text).",
        413: "Request body larger than `STACKCAST_MAX_PAYLOAD_BYTES`.",
        415: f"A body not sent as JSON (`Content-Type` other than `{JSON}`).",
        503: "The inference worker died while holding the request; it is being restarted.",
        504: "No forecast within the request timeout (`STACKCAST_REQUEST_TIMEOUT`).",
    },
}
UNAUTHORIZED = "Missing or wrong `X-API-Key` header."


def guarded_paths(routes: Iterable[BaseRoute], guard: Callable[..., Any]) -> set[str]:
    """The paths of the routes that run `guard` as a dependency."""
    return {
        route.path
        for route in routes
        if isinstance(route, APIRoute)
        and any(d.call == guard for d in route.dependant.dependencies)
    }


def amend(schema: dict[str, Any], guarded: Iterable[str] = ()) -> dict[str, Any]:
    """Write the plain-text answers, and the error answers (401 on `guarded`), into `schema`."""
    paths = schema.get("paths", {})
    errors = {path: dict(codes) for path, codes in ERRORS.items()}
    for path in guarded:
        errors.setdefault(path, {})[401] = UNAUTHORIZED
    for path, answers in PLAIN_TEXT.items():
        for operation in paths.get(path, {}).values():
            responses = operation.setdefault("responses", {})
            for status, (media_type, description) in answers.items():
                responses[str(status)] = {
                    "description": description,
                    "content": {media_type: _TEXT},
                }
    for path, codes in errors.items():
        for operation in paths.get(path, {}).values():
            responses = operation.setdefault("responses", {})
            for status, description in codes.items():
                responses[str(status)] = {
                    "description": description,
                    "content": {"application/json": {"schema": _ERROR_REF}},
                }
    schema.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA] = _ERROR_BODY
    return schema


def document(
    app: FastAPI, guard: Callable[..., Any] | None = None, open_paths: Iterable[str] = ()
) -> None:
    """Serve the amended schema at `app.openapi_url` (generated on the first request).

    `app` is titled `TITLE` and described by `DESCRIPTION`.

    `guard`: the API-key dependency, when a key is configured; the routes that run it, less
    `open_paths` (which it lets through), are documented with a 401.
    """
    app.title, app.description = TITLE, DESCRIPTION
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            guarded = guarded_paths(app.routes, guard) - set(open_paths) if guard else set()
            app.openapi_schema = amend(generate(), guarded)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
