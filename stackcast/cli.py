"""The `stackcast` command: training's verbs (train, evaluate) and the service's (serve, predict).

This is the one place that sees both sides; `service` never imports `training`.
"""

from __future__ import annotations

from stackcast.service.cli import predict, serve
from stackcast.training.cli import app

__all__ = ["app"]

app.command()(serve)
app.command()(predict)
