"""`stackcast serve` and `stackcast predict`: the service's commands."""

from __future__ import annotations

from pathlib import Path
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
    from stackcast.service.settings import SettingsError, load_settings

    overrides = {"model_uri": model_uri, "host": host, "port": port}
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    from stackcast.service.app import WorkerStartError
    from stackcast.service.loader import ModelNotFoundError, UnsafeArtifactError
    from stackcast.service.retry import RegistryUnavailableError
    from stackcast.service.serve import (
        serve as run_server,  # torch, mlflow, litserve: only when serving
    )

    typer.echo(f"serving {settings.model_uri} on http://{settings.host}:{settings.port}")
    try:
        run_server(settings)
    except (
        ModelNotFoundError,
        UnsafeArtifactError,
        RegistryUnavailableError,
        WorkerStartError,
    ) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def predict(
    csv: Annotated[Path, typer.Option(help="Long-format file (unique_id, ds, y), CSV or Parquet.")],
    url: Annotated[str, typer.Option(help="Service base URL.")] = "http://127.0.0.1:8000",
    id_: Annotated[
        list[str] | None, typer.Option("--id", help="Only this series (repeat for more).")
    ] = None,
    horizon: Annotated[
        int | None, typer.Option(help="Steps ahead (default: the model's horizon).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write unique_id,h,y_hat as CSV here instead of printing.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="STACKCAST_API_KEY", help="X-API-Key, if the server needs one."),
    ] = None,
    series_per_request: Annotated[int, typer.Option(help="Series sent per HTTP request.")] = 64,
) -> None:
    """Post histories from a file to a running service; print or write the forecasts."""
    import httpx

    from stackcast.service.client import forecast, read_histories

    try:
        histories = read_histories(csv, id_ or [])
        table, models = forecast(
            url,
            histories,
            horizon=horizon,
            api_key=api_key,
            series_per_request=series_per_request,
        )
    except (ValueError, httpx.HTTPError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    for model in models:  # more than one when a promotion landed between requests
        typer.echo(f"model: {model['name']} version {model['version']} (run {model['run_id']})")
    if out is None:
        typer.echo(table.to_string(index=False))
    else:
        table.to_csv(out, index=False)
        typer.echo(f"wrote {len(table)} rows for {table['unique_id'].nunique()} series to {out}")
