"""422 bodies that name the field and the reason, and never echo the offending input.

A body that failed only because it was not sent as JSON gets a 415 instead (`service.media_type`).

FastAPI's default handler echoes each bad input; a NaN among them cannot be written as JSON,
which would turn a client error into a 500. Echoing a 10,000-point history helps nobody either,
nor does listing each of its 10,000 NaNs (1.4 MB of 422): the first `MAX_PROBLEMS` are listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from stackcast.service.media_type import is_json, not_json

MAX_PROBLEMS = 20  # enough to fix a request by; the rest are counted, not listed


def field_path(loc: Sequence[str | int]) -> str:
    """`("body", "series", 0, "history", 3)` -> `series[0].history[3]`."""
    path = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def problems(error: RequestValidationError) -> list[dict[str, Any]]:
    """One entry per problem: field path, message, pydantic error type and location.

    Past `MAX_PROBLEMS`, one last entry says how many more there were.
    """
    errors = error.errors()
    found = []
    for e in errors[:MAX_PROBLEMS]:
        field, msg = field_path(e["loc"]), e["msg"].removeprefix("Value error, ")
        if e["type"] == "json_invalid":  # loc is ("body", character position)
            field, msg = "body", f"invalid JSON at character {e['loc'][-1]}: {e['ctx']['error']}"
        found.append({"field": field, "msg": msg, "type": e["type"], "loc": list(e["loc"])})
    if len(errors) > MAX_PROBLEMS:
        more = len(errors) - MAX_PROBLEMS
        msg = f"{more} more problems not listed (the first {MAX_PROBLEMS} are)"
        found.append({"field": "body", "msg": msg, "type": "too_many_errors", "loc": ["body"]})
    return found


async def validation_error_handler(request: Request, error: Exception) -> JSONResponse:
    """FastAPI exception handler for RequestValidationError: 415 for a non-JSON body, else 422."""
    assert isinstance(error, RequestValidationError)
    content_type = request.headers.get("content-type")
    body_failed = any(tuple(e["loc"][:1]) == ("body",) for e in error.errors())
    if body_failed and not is_json(content_type):
        return JSONResponse({"detail": not_json(content_type)}, status_code=415)
    return JSONResponse({"detail": problems(error)}, status_code=422)
