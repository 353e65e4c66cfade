"""`stackcast serve`: the service's command (`stackcast.cli` reports its errors)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    model_uri: Annotated[
        str | None, typer.Option(help="Registered model, e.g. models:/stackcast@champion.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
) -> None:
    """Serve the registered model over HTTP (every setting also reads STACKCAST_* env vars)."""
    from stackcast.service.settings import load_settings

    overrides = {"model_uri": model_uri, "host": host, "port": port}
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    from stackcast.service.serve import (
        serve as run_server,  # torch, mlflow, litserve: only when serving
    )

    typer.echo(f"serving {settings.model_uri} on http://{settings.host}:{settings.port}")
    run_server(settings)
