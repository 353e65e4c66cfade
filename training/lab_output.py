"""Where `stackcast lab` writes its report: outside the repository, never over committed files.

By default the report goes to the user's cache directory (`~/.cache/stackcast/lab/BUDGET` on
Linux, platformdirs' equivalent elsewhere), wherever the command is run from: a lab run in a
clone leaves the clone as it was. An `--out` inside a git checkout is fine, unless a file the
report would write is tracked by git there (the committed sample, `docs/lab/small`): that
needs `--overwrite`, checked before any training starts.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from platformdirs import user_cache_path


class TrackedReportError(FileExistsError):
    """The report would overwrite files tracked by git, and `--overwrite` was not given."""


def default_out_dir() -> Path:
    """The lab's report root when `--out` is not given: the user's cache directory."""
    return user_cache_path("stackcast") / "lab"


def tracked_files(paths: Iterable[Path]) -> list[Path]:
    """The `paths` that git tracks, in whichever checkout holds them (none: not in one)."""
    absolute = [p.resolve() for p in paths]
    if not absolute:
        return []
    anchor = absolute[0].parent
    while not anchor.is_dir():  # the report's directory may not exist yet
        anchor = anchor.parent
    try:
        listed = subprocess.run(
            ["git", "-C", str(anchor), "ls-files", "-z", "--full-name", "--", *map(str, absolute)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:  # no git installed: there is no checkout to protect
        return []
    if listed.returncode != 0:  # not inside a checkout
        return []
    root = subprocess.run(
        ["git", "-C", str(anchor), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return [Path(root, name).resolve() for name in listed.stdout.split("\0") if name]


def check_writable(target: Path, names: Iterable[str], overwrite: bool) -> None:
    """Refuse to write `names` into `target` over tracked files unless `overwrite`.

    Raises:
        TrackedReportError: naming the tracked files and the flag that allows it.
    """
    tracked = tracked_files(target / name for name in names)
    if tracked and not overwrite:
        shown = ", ".join(sorted(p.name for p in tracked))
        raise TrackedReportError(
            f"{target} holds files tracked by git ({shown}): the lab would overwrite "
            "committed files. Choose another --out, or pass --overwrite to replace them."
        )
