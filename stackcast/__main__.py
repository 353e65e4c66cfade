"""`python -m stackcast` runs the `stackcast` CLI."""

from stackcast.cli import app

app(prog_name="stackcast")
