"""A `/predict` body not labelled JSON gets a 415 naming `application/json`, not a 422.

FastAPI parses a body as JSON only when its Content-Type says so (`application/json` or
`application/*+json`; no Content-Type at all is refused too, its CSRF guard). Any other body,
e.g. `text/plain` or curl's default `application/x-www-form-urlencoded`, reaches pydantic as
bytes and fails with "Input should be a valid dictionary or object to extract fields from": a
422 that hides the fix. The validation-error handler (`service.errors`) answers such a request
with this module's 415 instead. FastAPI has no 415 of its own.
"""

from __future__ import annotations

from email.message import Message

JSON = "application/json"


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body with this Content-Type as JSON (its own test, routing.py)."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def not_json(content_type: str | None) -> str:
    """The 415's detail: what was sent and what to send."""
    sent = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
    return (
        f"the body must be JSON sent with Content-Type: {JSON}; got {sent}"
        f" (curl: -H 'content-type: {JSON}')"
    )
