"""`python -m training` runs the `stackcast` CLI."""

from training.cli import app

app(prog_name="stackcast")
