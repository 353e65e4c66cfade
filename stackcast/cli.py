"""The `stackcast` command: training's verbs (train, evaluate, lab), the service's (serve, predict).

This is the one place that sees both sides; `service` never imports `training`. It is also the
one error boundary: a user's mistake (`stackcast.user_errors`) prints one line, `error: ...`,
and exits with its kind's status; anything else is a crash and shows its traceback.
`--debug` (or `STACKCAST_DEBUG=1`) shows the traceback of user errors too.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from stackcast.predict import predict
from stackcast.service.cli import serve
from stackcast.training.cli import app as training_app
from stackcast.training.cli import configure_output
from stackcast.user_errors import classify

__all__ = ["app"]


class UserErrorBoundary(TyperGroup):
    """The root group: turns a user's mistake, raised by any command, into one line and a status."""

    def invoke(self, ctx: Any) -> Any:  # Typer's fork of click.Context (a private module)
        """Run the command; report a user error, re-raise anything else."""
        try:
            return super().invoke(ctx)
        except Exception as error:
            found = None if ctx.params.get("debug") else classify(error)
            if found is None:
                raise  # a crash (or Click's own exit/usage error): as it is
            typer.echo(f"error: {found.message}", err=True)
            raise typer.Exit(found.code) from None


app = typer.Typer(
    cls=UserErrorBoundary,
    help="Train, track, register and score stacked recurrent forecasters; serve them.",
)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option(help="Debug logging.")] = False,
    debug: Annotated[
        bool,
        typer.Option(
            envvar="STACKCAST_DEBUG",
            help="Show the traceback of user errors (bad data, config, missing file, ...) too.",
        ),
    ] = False,
) -> None:
    configure_output(verbose)


# Typers added without a name merge their commands into the root, in this order.
service_side = typer.Typer()
service_side.command()(serve)
service_side.command()(predict)
app.add_typer(training_app)  # train, lab, evaluate
app.add_typer(service_side)
