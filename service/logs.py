"""One log format for the service's own messages, in every server process."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s [%(processName)s %(process)d] %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Send the `stackcast.service.*` loggers to stderr with time, level and process; idempotent.

    Called in the main process before anything is forked (HTTP servers inherit it) and in each
    spawned inference worker, which starts with logging unconfigured.
    """
    logger = logging.getLogger("stackcast.service")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
