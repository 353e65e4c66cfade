"""`GET /`: a page saying what this server is, which model it serves, and where to go next.

LitServe's own `/` answers "litserve running" (behind the API key); a newcomer who opens the
address in a browser learns nothing from it. This page needs no key, like `/docs`: it names the
served model only when no key is configured, since `/info`, which says more, needs the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from fastapi import Request
from fastapi.responses import HTMLResponse


@dataclass(frozen=True)
class Link:
    """One route the page points to."""

    path: str
    what: str
    needs_key: bool = False


def landing_html(
    title: str, model: str | None, versions: Sequence[str], links: Sequence[Link], root: str = ""
) -> str:
    """The page: `model` is the served URI (None: not shown), `versions` those workers hold.

    `root`: the ASGI root path a proxy serves the app under; every link starts with it.
    """
    root = escape(root)
    if model is None:
        served = (
            f"<p>Model details: <a href='{root}/info'>/info</a> (needs the X-API-Key header).</p>"
        )
    else:
        held = ", ".join(escape(v) for v in versions) or "none yet: the model is loading"
        served = f"<p>Model: <code>{escape(model)}</code>, version {held}.</p>"
    items = "\n".join(
        f"<li><a href='{root}{escape(link.path)}'><code>{escape(link.path)}</code></a>: "
        f"{escape(link.what)}{' (needs X-API-Key)' if link.needs_key else ''}</li>"
        for link in links
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{escape(title)}</title></head>
<body>
<h1>{escape(title)}</h1>
<p>A stacked recurrent forecaster (LSTM, GRU or RNN) registered in MLflow, served with LitServe.
<code>POST /predict</code> a JSON body <code>{{"series": [{{"history": [...]}}]}}</code> with
<code>Content-Type: application/json</code>; the answer is one point forecast per series.</p>
{served}
<ul>
{items}
</ul>
</body>
</html>
"""


def landing_page(
    request: Request,
    title: str,
    model: str | None,
    versions: Sequence[str],
    links: Sequence[Link],
) -> HTMLResponse:
    """`landing_html` for `request` (under its root path), as a response."""
    root = str(request.scope.get("root_path", ""))
    return HTMLResponse(landing_html(title, model, versions, links, root))
