"""Registry access: resolve a `models:/` URI to a version and load its weights (no pickle)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import mlflow
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import ValidationError
from safetensors import SafetensorError

from stackcast.models import (
    DataContract,
    ModelConfig,
    StackedRNNForecaster,
    load_data_contract,
    load_model_dir,
)
from stackcast.models.contract import CONFIG_FILE, MODEL_DIR, WEIGHTS_FILE

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelNotFoundError(LookupError):
    """The URI names a model, alias or version the registry does not have."""


class UnsafeArtifactError(ValueError):
    """A model file is not in the one format the service reads; it is refused, not parsed."""


@dataclass(frozen=True)
class ModelSource:
    """A parsed `models:/NAME@ALIAS` or `models:/NAME/VERSION`."""

    name: str
    alias: str | None
    version: str | None

    @classmethod
    def parse(cls, uri: str) -> ModelSource:
        """Parse `uri`; anything else is refused with the accepted forms."""
        match = _URI.match(uri)
        if match is None:
            raise ValueError(f"model URI {uri!r}: use models:/NAME@ALIAS or models:/NAME/VERSION")
        return cls(match["name"], match["alias"], match["version"])

    @property
    def uri(self) -> str:
        """Back to `models:/...` form."""
        suffix = f"@{self.alias}" if self.alias is not None else f"/{self.version}"
        return f"models:/{self.name}{suffix}"

    @property
    def follows_alias(self) -> bool:
        """Whether a promotion (alias move) should be picked up."""
        return self.alias is not None


@dataclass(frozen=True)
class VersionInfo:
    """One registered version: what responses and /info report."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str]


@dataclass(frozen=True)
class ServedModel:
    """A loaded version: the network on its device plus its registry identity."""

    network: StackedRNNForecaster
    info: VersionInfo
    data: DataContract | None = None  # None: a version logged before the data contract


class Registry:
    """Reads versions and artifacts of one registered model from an MLflow registry."""

    def __init__(self, tracking_uri: str, source: ModelSource) -> None:
        self.tracking_uri = tracking_uri
        self.source = source
        # An explicit client: the process-wide tracking URI is left alone.
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def current(self) -> VersionInfo:
        """The version the URI points to now (the alias holder, or the pinned version).

        Raises:
            ModelNotFoundError: no such registered model, alias or version.
        """
        name = self.source.name
        try:
            if self.source.alias is not None:
                mv = self.client.get_model_version_by_alias(name, self.source.alias)
            else:
                mv = self.client.get_model_version(name, str(self.source.version))
        except MlflowException as error:
            if error.get_http_status_code() != 404 and "not found" not in str(error).lower():
                raise
            raise ModelNotFoundError(
                f"{self.source.uri} is not in the registry at {self.tracking_uri}: "
                f"{error.message} (train and register one first, e.g. `make demo`)"
            ) from None
        return VersionInfo(name, str(mv.version), str(mv.run_id), dict(mv.tags))

    def _download(self, info: VersionInfo, path: str) -> Path:
        # The version's artifact location, not a models:/ URI: resolving those reads the
        # process-wide registry URI, whatever this client was given.
        location = self.client.get_model_version_download_uri(info.name, info.version)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/{path}", tracking_uri=self.tracking_uri
        )
        return Path(local)

    def config(self, info: VersionInfo) -> ModelConfig:
        """The version's model contract (input size, horizon, ...) without its weights.

        Raises:
            UnsafeArtifactError: the file is not a model config (JSON).
        """
        path = self._download(info, f"{MODEL_DIR}/{CONFIG_FILE}")
        return _read_config(info, path)

    def load(self, info: VersionInfo, device: str | torch.device) -> ServedModel:
        """Rebuild the version's network from safetensors + config on `device`.

        Only JSON and safetensors are read, never through MLflow's pyfunc loader (which runs
        the logged model's code). A weights file that is anything but safetensors (a pickle, a
        `torch.save` checkpoint) is refused by its header, before any of it is interpreted.

        Raises:
            UnsafeArtifactError: the config is not JSON, or the weights not safetensors.
        """
        directory = self._download(info, MODEL_DIR)
        _read_config(info, directory / CONFIG_FILE)
        try:
            network = load_model_dir(directory, device)
        except SafetensorError as error:
            raise UnsafeArtifactError(
                f"{info.name} version {info.version}: {WEIGHTS_FILE} is not a safetensors "
                f"file ({error}); refusing to load"
            ) from None
        return ServedModel(network, info, load_data_contract(directory))


def _read_config(info: VersionInfo, path: Path) -> ModelConfig:
    try:
        return ModelConfig.model_validate_json(path.read_bytes())
    except ValidationError as error:
        first = error.errors()[0]
        raise UnsafeArtifactError(
            f"{info.name} version {info.version}: {CONFIG_FILE} is not a valid model config "
            f"({first['type']}: {first['msg']}); refusing to load"
        ) from None
