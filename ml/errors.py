"""Errors raised by the ML engine."""
from __future__ import annotations

import os


class MLError(Exception):
    """Base class for every error raised by ``ml``."""


class ModelLoadError(MLError):
    """A configured model is missing or cannot be loaded.

    The message always names the config setting to change, because the person
    who sees it (an operator reading a Celery log) fixes it in the config file.
    """

    def __init__(self, setting: str, value: object, reason: str, hint: str = "a local path or hub id"):
        self.setting = setting
        self.value = value
        self.reason = reason
        super().__init__(f"{setting}: {value!r} {reason}; set {setting} (env RAZMETKA_ML_CONFIG file) to {hint}")


class ConfigError(MLError):
    """The config file is malformed or has an invalid value."""


class TrainingRefused(MLError, ValueError):
    """A training that cannot finish as asked (it would outrun the worker's time limit); the
    message says what to change. Shown to the person as it is, not as a failure's class name."""


def missing_path(path: str | os.PathLike, want: str = "file") -> str:
    """Why `path` is not the `want` ("file" or "folder") asked for: "not found" was said of a
    folder given as a checkpoint, of /dev/null and of a file given as a gallery folder."""
    if not os.path.exists(path):
        return "not found"
    if want == "file":
        return "is a folder, not a file" if os.path.isdir(path) else "is not a regular file"
    return "is a file, not a folder"
