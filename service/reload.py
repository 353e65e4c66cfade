"""Promotion without restart: poll the alias, load a newly promoted version, hand it over."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from stackcast.models import ModelConfig
from stackcast.service.loader import Registry, ServedModel, UnsafeArtifactError, VersionInfo
from stackcast.service.retry import redact, unreachable

logger = logging.getLogger(__name__)


class AliasWatcher(threading.Thread):
    """Background thread of one inference worker.

    Every `interval` seconds it asks the registry which version the alias points to. A new
    version is loaded and warmed off the request path, then `swap` publishes it with one
    reference assignment, so a batch runs wholly on the old or wholly on the new version.
    A version whose contract the running server cannot honour (see `incompatible`), or whose
    files are not safetensors + JSON, is refused once, loudly, and the current version keeps
    serving; so does a registry outage (logged once when it starts and once when it ends).
    """

    def __init__(
        self,
        registry: Registry,
        interval: float,
        serving: str,
        load: Callable[[VersionInfo], ServedModel],
        swap: Callable[[ServedModel], None],
        incompatible: Callable[[ModelConfig], str | None],
    ) -> None:
        super().__init__(name="stackcast-alias-watcher", daemon=True)
        self.registry = registry
        self.interval = interval
        self.serving = serving
        self._load = load
        self._swap = swap
        self._incompatible = incompatible
        self._refused: set[str] = set()
        self._outage = False  # the last check could not reach the tracking server
        self._stopping = threading.Event()

    def _reachable(self) -> None:
        if self._outage:
            self._outage = False
            logger.warning("tracking server %s reachable again", redact(self.registry.tracking_uri))

    def stop(self) -> None:
        """End the polling loop (after the current check)."""
        self._stopping.set()

    def run(self) -> None:
        """Poll until stopped."""
        while not self._stopping.wait(self.interval):
            self.check()

    def check(self) -> bool:
        """One poll; True when a new version was swapped in."""
        try:
            info = self.registry.current()
            self._reachable()
            if info.version == self.serving or info.version in self._refused:
                return False
            problem = self._incompatible(self.registry.config(info))
            if problem is not None:
                self._refused.add(info.version)
                logger.error(
                    "not serving %s version %s: %s; still serving version %s (restart to switch)",
                    info.name,
                    info.version,
                    problem,
                    self.serving,
                )
                return False
            served = self._load(info)
        except UnsafeArtifactError as error:
            self._refused.add(info.version)
            logger.error("%s; still serving version %s", error, self.serving)
            return False
        except Exception as error:  # a registry outage must not take the served model down
            reason = unreachable(error)
            if reason is None:
                logger.exception("alias check failed; still serving version %s", self.serving)
            elif not self._outage:  # one line per outage, not one per poll
                logger.warning(
                    "tracking server %s unreachable (%s); still serving version %s, "
                    "checking again every %g s",
                    redact(self.registry.tracking_uri),
                    reason,
                    self.serving,
                    self.interval,
                )
            self._outage = self._outage or reason is not None
            return False
        self._swap(served)
        logger.info("now serving %s version %s (was %s)", info.name, info.version, self.serving)
        self.serving = info.version
        return True
