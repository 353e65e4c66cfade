"""Plant a pickle in a registered model's files: its unpickling would create a marker file."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from mlflow.tracking import MlflowClient

from stackcast.models.contract import MODEL_DIR
from tests.conftest import ServedStore, in_store


class Payload:
    """Unpickling this creates `marker`: the proof that a pickle was run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def model_dir(store: ServedStore, name: str, version: str) -> Path:
    """Where the registered version's weights and config lie in the test store."""
    with in_store(store.directory):
        location = MlflowClient().get_model_version_download_uri(name, version)
    return Path(urlparse(location).path) / MODEL_DIR


def plant(path: Path, marker: Path, how: str) -> None:
    if how == "pickle":
        path.write_bytes(pickle.dumps({"lstm.weight": Payload(marker)}))
    else:  # a torch checkpoint: a zip archive with a pickle inside
        torch.save({"lstm.weight": Payload(marker)}, path)
    assert not marker.exists()
