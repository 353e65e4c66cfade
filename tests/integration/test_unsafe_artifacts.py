"""Model files are read as safetensors + JSON only: a planted pickle is refused, never run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from stackcast.service.loader import (
    ModelSource,
    Registry,
    ServedModel,
    UnsafeArtifactError,
    VersionInfo,
)
from stackcast.service.reload import AliasWatcher
from tests.conftest import ServedStore, register_version
from tests.poisoned import model_dir, plant

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_pickled_weights_are_refused_and_never_unpickled(
    served_store: ServedStore, tmp_path: Path, how: str
) -> None:
    name = f"poisoned-{how.replace('.', '-')}"
    version = register_version(served_store, name, seed=5)
    marker = tmp_path / "unpickled"
    plant(model_dir(served_store, name, version) / "weights.safetensors", marker, how)
    registry = Registry(served_store.tracking_uri, ModelSource.parse(f"models:/{name}@champion"))
    info = registry.current()
    assert registry.config(info).horizon == 12  # the JSON config is still fine
    with pytest.raises(UnsafeArtifactError) as refused:
        registry.load(info, "cpu")
    message = str(refused.value)
    assert message.startswith(f"{name} version {version}: weights.safetensors is not a")
    assert "safetensors file (Error while deserializing header" in message
    assert message.endswith("; refusing to load")
    assert not marker.exists()


def test_a_pickled_config_is_refused(served_store: ServedStore, tmp_path: Path) -> None:
    version = register_version(served_store, "poisoned-config", seed=6)
    marker = tmp_path / "unpickled"
    config = model_dir(served_store, "poisoned-config", version) / "model_config.json"
    plant(config, marker, "pickle")
    registry = Registry(served_store.tracking_uri, ModelSource.parse("models:/poisoned-config/1"))
    info = registry.current()
    for read in (registry.config, lambda i: registry.load(i, "cpu")):
        with pytest.raises(UnsafeArtifactError, match=r"model_config.json is not a valid model"):
            read(info)
    assert not marker.exists()


def test_a_poisoned_promotion_is_refused_once_and_the_served_version_stays(
    served_store: ServedStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = "poisoned-promotion"
    register_version(served_store, name, seed=7)
    registry = Registry(served_store.tracking_uri, ModelSource.parse(f"models:/{name}@champion"))
    swapped: list[ServedModel] = []
    loads: list[str] = []

    def load(info: VersionInfo) -> ServedModel:
        loads.append(info.version)
        return registry.load(info, "cpu")

    watcher = AliasWatcher(registry, 1.0, "1", load, swapped.append, lambda config: None)
    version = register_version(served_store, name, seed=8)
    marker = tmp_path / "unpickled"
    plant(model_dir(served_store, name, version) / "weights.safetensors", marker, "pickle")
    with caplog.at_level(logging.ERROR, logger="stackcast.service.reload"):
        assert watcher.check() is False
        assert watcher.check() is False
    assert loads == ["2"]  # tried once, then refused without downloading again
    assert "refusing to load; still serving version 1" in caplog.text
    assert swapped == [] and watcher.serving == "1" and not marker.exists()
