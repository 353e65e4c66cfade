"""Where the lab's report goes: outside the repository, never over files git tracks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stackcast.training.lab_output import (
    TrackedReportError,
    check_writable,
    default_out_dir,
    tracked_files,
)

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("table.csv", "table.md")


def _git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", *identity, "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout with a committed report in docs/lab/small."""
    repo = tmp_path / "repo"
    (repo / "docs" / "lab" / "small").mkdir(parents=True)
    (repo / "docs" / "lab" / "small" / "table.md").write_text("committed\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "sample report")
    return repo


def test_the_default_is_the_users_cache_dir_outside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_out_dir() == tmp_path / "cache" / "stackcast" / "lab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert not default_out_dir().resolve().is_relative_to(ROOT)


def test_files_git_tracks_are_refused_unless_overwrite(checkout: Path) -> None:
    target = checkout / "docs" / "lab" / "small"
    assert tracked_files(target / n for n in NAMES) == [(target / "table.md").resolve()]
    with pytest.raises(TrackedReportError, match=r"table\.md.*--overwrite"):
        check_writable(target, NAMES, overwrite=False)
    check_writable(target, NAMES, overwrite=True)


def test_untracked_places_are_written_freely(checkout: Path, tmp_path: Path) -> None:
    check_writable(checkout / "docs" / "lab" / "tiny", NAMES, overwrite=False)  # not yet there
    (checkout / "scratch").mkdir()
    (checkout / "scratch" / "table.md").write_text("mine\n")  # in the checkout, untracked
    check_writable(checkout / "scratch", NAMES, overwrite=False)
    check_writable(tmp_path / "elsewhere" / "small", NAMES, overwrite=False)  # no checkout
    assert tracked_files(tmp_path / "elsewhere" / n for n in NAMES) == []
