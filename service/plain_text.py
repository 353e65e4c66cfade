"""Every answer names its media type: text without one is labelled `text/plain`.

LitServe answers `/` and `/health` with a bare `Response("ok")`, which Starlette sends without
a Content-Type; clients (and schemathesis' content-type check against `/openapi.json`) are left
to guess. This middleware labels such answers as the schema documents them (`service.openapi`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PLAIN_TEXT = b"text/plain; charset=utf-8"
NO_BODY = frozenset({204, 304})


class PlainTextDefault:
    """ASGI middleware: a response started without a Content-Type gets `text/plain`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; label an unlabelled answer on its way out."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_labelled(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] not in NO_BODY:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"content-type" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"content-type", PLAIN_TEXT)]}
            await send(message)

        await self.app(scope, receive, send_labelled)
