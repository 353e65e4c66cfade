"""A user's mistake, as a user makes it: one line on stderr, its kind's exit status, no traceback.

Every case fails before any training (or any request), so each is one short process.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stackcast.user_errors import ExitCode
from tests.e2e.servers import free_port
from tests.e2e.train_args import run_stackcast


def _series_csv(path: Path, y: list[object] | None = None) -> Path:
    """Two hourly series of 4 points; `y` replaces the values of the first."""
    frame = pd.DataFrame(
        {
            "unique_id": ["A"] * 4 + ["B"] * 4,
            "ds": list(pd.date_range("2024-01-01", periods=4, freq="h")) * 2,
            "y": (y or [1.0, 2.0, 3.0, 4.0]) + [5.0, 6.0, 7.0, 8.0],
        }
    )
    frame.to_csv(path, index=False)
    return path


def _assert_user_error(
    done: object, code: ExitCode, *messages: str, traceback: bool = False
) -> None:
    import subprocess

    assert isinstance(done, subprocess.CompletedProcess)
    assert done.returncode == code, done.stderr[-3000:]
    if traceback:
        assert "Traceback" in done.stderr
        return
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()  # one line, and nothing else
    assert line.startswith("error: ")
    for message in messages:
        assert message in line


def test_non_numeric_y_is_a_data_error_naming_series_and_row(tmp_path: Path) -> None:
    data = _series_csv(tmp_path / "bad.csv", [1.0, "abc", 3.0, 4.0])
    done = run_stackcast(["train", "--data", str(data)], tmp_path)
    _assert_user_error(done, ExitCode.DATA, "bad.csv", "row 1 (series 'A'", "y='abc'")
    assert not (tmp_path / "mlflow.db").exists()  # refused before any run


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.hiden_size=8", "model.hiden_size: Extra inputs are not permitted"),
        ("model.cell=lstmx", "model.cell: Input should be 'lstm', 'gru'"),
        ("model.hidden_size", "override 'model.hidden_size' is not of the form"),
    ],
)
def test_bad_config_key_or_value_is_a_config_error(
    tmp_path: Path, override: str, named: str
) -> None:
    done = run_stackcast(["train", "--set", override], tmp_path)
    _assert_user_error(done, ExitCode.CONFIG, named)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("option", ["--data", "--config"])
def test_missing_file_is_named(tmp_path: Path, option: str) -> None:
    done = run_stackcast(["train", option, "nowhere.csv"], tmp_path)
    _assert_user_error(done, ExitCode.MISSING_FILE, "nowhere.csv")


def test_unreachable_tracking_server_fails_fast_naming_its_uri(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    # MLflow alone would retry for minutes; the timeout is a hang guard, not a measurement.
    done = run_stackcast(
        ["evaluate"], tmp_path, timeout=120, extra_env={"MLFLOW_TRACKING_URI": uri}
    )
    _assert_user_error(done, ExitCode.TRACKING_UNREACHABLE, f"tracking server {uri}", "unreachable")


def test_unknown_model_is_named_with_the_registry(tmp_path: Path) -> None:
    done = run_stackcast(["evaluate", "--model", "models:/nobody@champion"], tmp_path)
    _assert_user_error(done, ExitCode.UNKNOWN_MODEL, "name=nobody not found", "mlflow.db")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--debug", "train", "--data", "nowhere.csv"], {}),
        (["train", "--data", "nowhere.csv"], {"STACKCAST_DEBUG": "1"}),
    ],
)
def test_debug_shows_the_traceback_of_a_user_error(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    done = run_stackcast(args, tmp_path, extra_env=env)
    _assert_user_error(done, ExitCode.CRASH, traceback=True)
    assert "FileNotFoundError: data file not found: nowhere.csv" in done.stderr


def test_predict_refuses_bad_data_before_any_request(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # a request would fail as SERVICE_UNREACHABLE
    for y, named in [
        ([1.0, float("nan"), 3.0, 4.0], "NaN/inf value(s) in 1 series"),
        ([1.0, "x", 3.0, 4.0], "not numbers"),
    ]:
        data = _series_csv(tmp_path / "bad.csv", y)
        done = run_stackcast(["predict", "--csv", str(data), "--url", url], tmp_path)
        _assert_user_error(done, ExitCode.DATA, "bad.csv", named, "row 1 (series 'A'")

    frame = pd.read_csv(_series_csv(tmp_path / "dup.csv"))
    pd.concat([frame, frame.iloc[[2]]]).to_csv(tmp_path / "dup.csv", index=False)
    done = run_stackcast(["predict", "--csv", str(tmp_path / "dup.csv"), "--url", url], tmp_path)
    _assert_user_error(done, ExitCode.DATA, "share a (unique_id, ds) pair", "series 'A'")

    frame.drop(columns="ds").to_csv(tmp_path / "nods.csv", index=False)
    done = run_stackcast(["predict", "--csv", str(tmp_path / "nods.csv"), "--url", url], tmp_path)
    _assert_user_error(done, ExitCode.DATA, "missing column(s) 'ds'")


def test_predict_names_the_url_of_a_service_that_is_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    data = _series_csv(tmp_path / "good.csv")
    done = run_stackcast(["predict", "--csv", str(data), "--url", url], tmp_path)
    _assert_user_error(done, ExitCode.SERVICE_UNREACHABLE, f"no service answers at {url}")
