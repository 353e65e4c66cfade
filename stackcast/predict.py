"""`stackcast predict`: a long-format file, checked as training checks it, to a running service.

It joins both sides, which is why it lives here: the file is validated with training's rules
(`training/data.py`: columns, ids and stamps, numbers, duplicates, NaN, gaps, one frequency)
before any request, the service's client posts the histories, and each forecast step gets its
timestamp from the file's frequency (`training/frequency.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast, get_args

import pandas as pd
import typer

if TYPE_CHECKING:
    from stackcast.training.data import SeriesSet

_FILL_HELP = (
    "NaN/inf values and missing timestamps (gaps), as data.fill in training: error (refuse), "
    "ffill, interpolate or zero."
)


def predict(
    csv: Annotated[Path, typer.Option(help="Long-format file (unique_id, ds, y), CSV or Parquet.")],
    url: Annotated[str, typer.Option(help="Service base URL.")] = "http://127.0.0.1:8000",
    id_: Annotated[
        list[str] | None, typer.Option("--id", help="Only this series (repeat for more).")
    ] = None,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Steps ahead (default: the model's horizon).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write unique_id,ds,h,y_hat as CSV here instead of printing."),
    ] = None,
    fill: Annotated[str, typer.Option(help=_FILL_HELP)] = "error",
    api_key: Annotated[
        str | None,
        typer.Option(envvar="STACKCAST_API_KEY", help="X-API-Key, if the server needs one."),
    ] = None,
    series_per_request: Annotated[
        int, typer.Option(min=1, help="Series sent per HTTP request.")
    ] = 64,
) -> None:
    """Post histories from a file to a running service; print or write the forecasts."""
    from stackcast.service.client import forecast
    from stackcast.training.data import FillPolicy, load_series_set

    if fill not in get_args(FillPolicy):
        raise typer.BadParameter(
            f"choose one of {', '.join(get_args(FillPolicy))}", param_hint="--fill"
        )
    data = load_series_set(csv, min_length=1, fill=cast(FillPolicy, fill))
    ids = id_ or list(data.series)
    unknown = [i for i in ids if i not in data.series]
    if unknown:
        raise typer.BadParameter(f"{csv} has no series {unknown}", param_hint="--id")
    histories = {i: data.series[i].astype(float).tolist() for i in ids}
    table, models = forecast(
        url, histories, horizon=horizon, api_key=api_key, series_per_request=series_per_request
    )
    table = with_stamps(table, data)
    for model in models:  # more than one when a promotion landed between requests
        typer.echo(f"model: {model['name']} version {model['version']} (run {model['run_id']})")
    if out is None:
        typer.echo(table.to_string(index=False))
    else:
        table.to_csv(out, index=False)
        typer.echo(f"wrote {len(table)} rows for {table['unique_id'].nunique()} series to {out}")


def with_stamps(table: pd.DataFrame, data: SeriesSet) -> pd.DataFrame:
    """`unique_id, h, y_hat` rows with each step's `ds`, after its series' last stamp.

    Args:
        table: the client's rows, `h` counting from 1 within each series.
        data: the validated file (`SeriesSet`: each series' last stamp, the frequency).

    Returns:
        Columns `unique_id, ds, h, y_hat`: `ds` a timestamp on the series' grid, or an integer
        step for integer `ds`.
    """
    from stackcast.training.frequency import future_stamps

    steps = table.groupby("unique_id", sort=False)["h"].max()
    ahead = {
        str(uid): future_stamps(data.last_ds[str(uid)], data.frequency, int(h))
        for uid, h in steps.items()
    }
    ds = [ahead[uid][h - 1] for uid, h in zip(table["unique_id"], table["h"], strict=True)]
    return table.assign(ds=ds)[["unique_id", "ds", "h", "y_hat"]]
