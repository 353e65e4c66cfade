"""`stackcast lab`: its budgets and help, divergence past the bound, where the report goes, and
`--budget tiny` end to end (a parent run, its children, the table and figures)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from stackcast.cli import app
from stackcast.training.lab import Outcome, run_child
from stackcast.training.lab_divergence import DIVERGENCE_BOUND
from stackcast.training.lab_plan import BUDGETS, TASKS, Spec, count_runs, specs
from stackcast.training.lab_report import FIGURES, divergence_figure, write_report
from stackcast.user_errors import ExitCode

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The issue's run: tanh RNN, SGD lr 0.5, no clipping, at the tiny budget's T.
EXPLODING = Spec("adding", "stress", "rnn_tanh", "default", None, 2, 8, "sgd", 0.5)


def _words(text: str) -> str:
    return " ".join(text.split())  # the help wraps wherever the terminal ends


def test_help_lists_every_budget_from_the_one_definition() -> None:
    result = CliRunner().invoke(app, ["lab", "--help"])
    assert result.exit_code == 0, result.output
    shown = _words(result.output)
    assert "tiny|small|full" in shown
    for name, budget in BUDGETS.items():
        assert _words(f"--budget {name}: {count_runs(budget)} runs. {budget.describe()}.") in shown
        assert count_runs(budget) == len(list(specs(budget, TASKS["all"])))


def test_an_unknown_budget_is_refused_naming_the_budgets() -> None:
    result = CliRunner().invoke(app, ["lab", "--budget", "huge"])
    assert result.exit_code == 2
    assert all(name in result.output for name in BUDGETS)


def test_a_report_over_committed_files_is_refused_before_anything_runs(mlflow_store: str) -> None:
    sample = ROOT / "docs" / "lab" / "small" / "table.md"
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--error-unmatch", str(sample)], capture_output=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout with the committed sample report")
    before = sample.read_bytes()
    out = ["--out", str(ROOT / "docs" / "lab")]
    result = CliRunner().invoke(app, ["lab", "--budget", "small", *out])
    assert result.exit_code == ExitCode.WOULD_OVERWRITE
    assert "tracked by git" in result.output and "--overwrite" in result.output
    assert sample.read_bytes() == before
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_the_report_goes_to_the_users_cache_by_default(
    mlflow_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["lab", "--budget", "tiny", "--task", "m4"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "cache" / "stackcast" / "lab" / "tiny"
    assert f"table and figures: {target}" in result.output
    assert len(pd.read_csv(target / "table.csv")) == len(list(specs(BUDGETS["tiny"], ("m4",))))
    assert not (Path.cwd() / "docs").exists()  # nothing written where the command ran


def test_a_run_past_the_bound_is_diverged_and_exploding(mlflow_store: str) -> None:
    outcome = run_child(EXPLODING, BUDGETS["tiny"], seed=0)
    assert outcome.diverged and outcome.verdict == "exploding"
    assert outcome.peak_ratio > DIVERGENCE_BOUND
    assert outcome.left_bound_at is not None and outcome.steps == outcome.left_bound_at
    assert "beyond the divergence bound" in outcome.divergence
    run = mlflow.get_run(outcome.run_id)
    assert run.data.tags["lab.diverged"] == "true"
    assert run.data.tags["gradients.verdict"] == "exploding"
    assert run.data.tags["gradients.reason"].startswith(outcome.divergence)


def _planted(spec: Spec, score: float, diverged: bool) -> Outcome:
    divergence = f"validation score at {score:.3g} x the baseline's" if diverged else ""
    return Outcome(
        spec, "run", score / 6, score, diverged, divergence, score, 4 if diverged else None,
        "exploding" if diverged else "vanishing", 1e-3, 1e-3, 0.5, 0.1, 4 if diverged else 8,
    )  # fmt: skip


def test_the_report_shows_the_issues_run_as_diverged(tmp_path: Path) -> None:
    clipped = Spec("adding", "stress", "rnn_tanh", "default", 1.0, 2, 8, "sgd", 0.5)
    outcomes = [_planted(EXPLODING, 2.16e10, diverged=True), _planted(clipped, 0.99, False)]
    frame = write_report(outcomes, tmp_path, "planted")
    table = (tmp_path / "table.md").read_text()
    assert "1 diverged" in table and f"{DIVERGENCE_BOUND:g}" in table
    assert f"`{EXPLODING.name}`: validation score at 2.16e+10" in table

    figure = divergence_figure(frame)
    stress, peaks = figure.axes[1], figure.axes[2]
    heights = sorted(bar.get_height() for bar in stress.patches)
    assert heights == [0.0, 1.0]  # no clipping: 1 of 1 diverged; clipping: 0 of 1
    points = sorted(tuple(p) for c in peaks.collections for p in c.get_offsets())
    assert points == [(4.0, DIVERGENCE_BOUND), (8.0, 0.99)]  # clipped at the bound


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
    assert f"({len(children)} children, 1 diverged)" in result.output  # the issue's run

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
    exploded = table[table.name == EXPLODING.name].iloc[0]  # the issue's run
    assert exploded.diverged and exploded.verdict == "exploding"
    assert (table.verdict[table.diverged] == "exploding").all()
    assert f"`{EXPLODING.name}`:" in (out / "tiny" / "table.md").read_text()
    assert f"table and figures: {out / 'tiny'}" in result.output
    for name in FIGURES:
        assert (out / "tiny" / name).read_bytes()[:4] == b"\x89PNG", name
    logged = mlflow.artifacts.list_artifacts(run_id=parents[0].info.run_id, artifact_path="lab")
    assert {Path(f.path).name for f in logged} >= {"table.csv", "table.md", *FIGURES}
