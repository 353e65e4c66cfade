"""What `stackcast` reports as a user's mistake, one line and one exit status per kind.

The classes are matched by their qualified names along the error's MRO, so that printing an
error never imports torch, Lightning or MLflow: a class whose module is not loaded cannot have
raised. `tests/unit/test_user_errors.py` imports every name, so a rename fails there.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """`stackcast`'s exit statuses (README, "Exit status"); 1 stays Python's own for a crash."""

    CRASH = 1  # an unexpected error: a bug, shown with its traceback
    USAGE = 2  # Click's own: unknown option, missing argument, bad option value
    DATA = 3  # the data file breaks the long-format rules
    CONFIG = 4  # a config key or value, a server setting
    MISSING_FILE = 5  # a named file or directory does not exist
    TRACKING_UNREACHABLE = 6  # the MLflow tracking server does not answer
    UNKNOWN_MODEL = 7  # no such registered model, alias, version or run
    SERVICE_UNREACHABLE = 8  # `predict`: no service answers at --url
    SERVICE_REFUSED = 9  # `predict`: the service refused the request (4xx/5xx)
    CONTRACT_MISMATCH = 10  # `evaluate`: the request disagrees with the model's data contract
    RESUME_REFUSED = 11  # `train --resume`: nothing to resume, or the config differs
    DIVERGED = 12  # training stopped on a NaN/inf loss
    MODEL_UNUSABLE = 13  # `serve`: the model's files are refused or the worker cannot load it
    WOULD_OVERWRITE = 14  # `lab`: the report would replace files tracked by git (--overwrite)
    INTERRUPTED = 143  # SIGTERM stopped training (128 + 15); `train --resume` continues it


# Qualified class name -> kind; the first class of an error's MRO found here decides.
KINDS: dict[str, ExitCode] = {
    "stackcast.training.data_errors.DataError": ExitCode.DATA,
    "stackcast.models.window.ShortHistoryError": ExitCode.DATA,
    "stackcast.training.config.ConfigError": ExitCode.CONFIG,
    "stackcast.training.auto.AutoConfigError": ExitCode.CONFIG,
    "stackcast.service.settings.SettingsError": ExitCode.CONFIG,
    "yaml.error.YAMLError": ExitCode.CONFIG,
    "builtins.FileNotFoundError": ExitCode.MISSING_FILE,
    "builtins.IsADirectoryError": ExitCode.MISSING_FILE,
    "stackcast.training.tracking.TrackingUnreachableError": ExitCode.TRACKING_UNREACHABLE,
    "stackcast.service.retry.RegistryUnavailableError": ExitCode.TRACKING_UNREACHABLE,
    "stackcast.service.loader.ModelNotFoundError": ExitCode.UNKNOWN_MODEL,
    "stackcast.service.client.ServiceUnreachableError": ExitCode.SERVICE_UNREACHABLE,
    "stackcast.service.client.ServiceError": ExitCode.SERVICE_REFUSED,
    "stackcast.training.evaluate.ContractMismatchError": ExitCode.CONTRACT_MISMATCH,
    "stackcast.training.resume.ResumeError": ExitCode.RESUME_REFUSED,
    "stackcast.training.telemetry.NonFiniteLossError": ExitCode.DIVERGED,
    "stackcast.service.loader.UnsafeArtifactError": ExitCode.MODEL_UNUSABLE,
    "stackcast.service.app.WorkerStartError": ExitCode.MODEL_UNUSABLE,
    "stackcast.training.lab_output.TrackedReportError": ExitCode.WOULD_OVERWRITE,
}
_VALIDATION_ERROR = "pydantic_core._pydantic_core.ValidationError"
_MLFLOW_ERROR = "mlflow.exceptions.MlflowException"


@dataclass(frozen=True)
class UserError:
    """How a user's mistake is reported: `error: <message>` on stderr, then exit `code`."""

    code: ExitCode
    message: str


def _names(error: BaseException) -> list[str]:
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__]


def _text(error: BaseException) -> str:
    """The error's message; an OS error as "No such file or directory: PATH"."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.strerror}: {error.filename}"
    return str(error)


def one_line(text: str) -> str:
    """Several lines as one: a line ending in ":" runs on, the others are joined by "; "."""
    parts = [line.strip() for line in str(text).splitlines() if line.strip()]
    out = parts[0] if parts else ""
    for part in parts[1:]:
        out += (" " if out.endswith(":") else "; ") + part
    return out


def _config_message(error: BaseException) -> str | None:
    """A training config's pydantic error as `key: reason (got value)`; None for another model."""
    from stackcast.training.config import config_model_names

    title = getattr(error, "title", None)
    if title not in config_model_names():
        return None
    problems = []
    for problem in error.errors(include_url=False):  # type: ignore[attr-defined]
        key = ".".join(map(str, problem["loc"])) or "(top level)"
        given = problem["input"]
        got = "" if isinstance(given, dict) else f" (got {given!r})"
        problems.append(f"{key}: {problem['msg']}{got}")
    return "invalid config: " + "; ".join(problems)


def _mlflow_kind(error: BaseException) -> UserError | None:
    """An MLflow error that is the user's: an unknown model, or a tracking server down."""
    import mlflow

    from stackcast.service.retry import redact, unreachable

    uri = redact(mlflow.get_tracking_uri())
    names = _names(error)
    # Only MLflow's (or requests') own errors: a bare TimeoutError elsewhere is no tracking server.
    ours = any(name.startswith(("mlflow.", "requests.")) for name in names)
    reason = unreachable(error) if ours else None
    if reason is not None:
        return UserError(
            ExitCode.TRACKING_UNREACHABLE,
            f"tracking server {uri} unreachable ({reason}): start it, or point "
            "MLFLOW_TRACKING_URI at a running one",
        )
    if _MLFLOW_ERROR not in names:
        return None
    status = error.get_http_status_code()  # type: ignore[attr-defined]
    message = str(error.message).rstrip(".")  # type: ignore[attr-defined]
    if status == 404 or "not found" in message.lower():
        return UserError(
            ExitCode.UNKNOWN_MODEL,
            f"{message} (registry: {uri}); train and register a model first, e.g. `make demo`",
        )
    return None


def classify(error: BaseException) -> UserError | None:
    """The kind and one-line message of a user's mistake; None for anything else (a crash)."""
    names = _names(error)
    for name in names:
        if name in KINDS:
            return UserError(KINDS[name], one_line(_text(error)))
    if _VALIDATION_ERROR in names:
        message = _config_message(error)
        return None if message is None else UserError(ExitCode.CONFIG, message)
    if "mlflow" in sys.modules:  # only then can the tracking server have been contacted
        return _mlflow_kind(error)
    return None
