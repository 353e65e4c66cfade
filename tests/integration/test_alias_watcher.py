"""The alias watcher: swaps in compatible promotions, refuses the rest once, keeps serving."""

from __future__ import annotations

import logging

import pytest

from stackcast.models import ModelConfig
from stackcast.service.loader import (
    ModelNotFoundError,
    ModelSource,
    Registry,
    ServedModel,
    VersionInfo,
)
from stackcast.service.reload import AliasWatcher
from tests.conftest import ServedStore, register_version

pytestmark = pytest.mark.slow


def test_watcher_swaps_compatible_versions_and_refuses_others_once(
    served_store: ServedStore, caplog: pytest.LogCaptureFixture
) -> None:
    name = "watched"
    register_version(served_store, name, seed=1)
    registry = Registry(served_store.tracking_uri, ModelSource.parse(f"models:/{name}@champion"))
    loads: list[str] = []
    swapped: list[ServedModel] = []

    def load(info: VersionInfo) -> ServedModel:
        loads.append(info.version)
        return registry.load(info, "cpu")

    def incompatible(config: ModelConfig) -> str | None:
        return None if config.horizon >= 12 else f"horizon {config.horizon} < 12"

    watcher = AliasWatcher(registry, 1.0, "1", load, swapped.append, incompatible)
    assert watcher.check() is False and loads == []  # the alias still points at version 1

    shorter = served_store.config.model_copy(update={"horizon": 6})
    register_version(served_store, name, seed=2, config=shorter)
    with caplog.at_level(logging.ERROR, logger="stackcast.service.reload"):
        assert watcher.check() is False
    assert "not serving watched version 2: horizon 6 < 12; still serving version 1" in caplog.text
    assert watcher.check() is False and loads == []  # refused once, never downloaded

    register_version(served_store, name, seed=3)
    assert watcher.check() is True
    assert loads == ["3"] and swapped[-1].info.version == "3" and watcher.serving == "3"
    assert swapped[-1].network.config.horizon == 12


def test_unknown_model_or_alias_is_reported_with_the_registry(served_store: ServedStore) -> None:
    for uri in ("models:/nobody@champion", "models:/tiny@nobody", "models:/tiny/99"):
        registry = Registry(served_store.tracking_uri, ModelSource.parse(uri))
        with pytest.raises(ModelNotFoundError, match=uri.replace("/", "/")) as missing:
            registry.current()
        assert served_store.tracking_uri in str(missing.value)
