"""`stackcast lab --budget tiny` end to end: a parent run, its children, the table and figures."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from stackcast.cli import app
from stackcast.training.lab import BUDGETS, specs
from stackcast.training.lab_report import FIGURES

pytestmark = pytest.mark.slow


def test_budgets_cover_the_grid_they_promise() -> None:
    full = list(specs(BUDGETS["full"], ("adding", "m4")))
    grid = [s for s in full if s.study == "grid"]
    assert {s.cell for s in grid} == {"rnn_tanh", "rnn_relu", "lstm", "gru"}
    assert {s.depth for s in grid} == {1, 2, 4, 8}
    assert {s.clip for s in grid} == {None, 1.0}
    assert {"default", "xavier_uniform", "he_uniform", "orthogonal", "identity"} == {
        s.init for s in grid
    }
    assert all(s.cell.startswith("rnn_") for s in grid if s.init == "identity")
    assert len({s.name for s in full}) == len(full)
    stress = [s for s in full if s.study == "stress"]
    assert {(s.optimizer, s.clip) for s in stress} == {("sgd", None), ("sgd", 1.0)}
    for budget in BUDGETS.values():
        studies = {s.study for s in specs(budget, ("adding", "m4"))}
        assert studies == {"grid", "lengths", "stress", "m4"}


def test_tiny_lab_runs_end_to_end(mlflow_store: str, tmp_path: Path) -> None:
    out = tmp_path / "lab"
    result = CliRunner().invoke(app, ["lab", "--budget", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    children = list(specs(BUDGETS["tiny"], ("adding", "m4")))
    assert f"({len(children)} children)" in result.output

    runs = mlflow.search_runs(experiment_names=["stackcast-lab"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.run_name == "lab-tiny"
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(kids) == len(children)
    assert {r.data.tags["lab.task"] for r in kids} == {"adding", "m4"}
    assert {r.data.tags["lab.study"] for r in kids} == {"grid", "lengths", "stress", "m4"}
    for kid in kids:
        assert kid.data.tags["gradients.verdict"] in {"healthy", "vanishing", "exploding"}
        assert "lab/seconds_per_epoch" in kid.data.metrics

    table = pd.read_csv(out / "tiny" / "table.csv")
    assert len(table) == len(children)
    assert set(table.verdict) <= {"healthy", "vanishing", "exploding"}
    for name in FIGURES:
        assert (out / "tiny" / name).read_bytes()[:4] == b"\x89PNG", name
    logged = mlflow.artifacts.list_artifacts(run_id=parents[0].info.run_id, artifact_path="lab")
    assert {Path(f.path).name for f in logged} >= {"table.csv", "table.md", *FIGURES}
