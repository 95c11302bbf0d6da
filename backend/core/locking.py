"""Optimistic locking: every write names the version it edits; a stale one changes nothing."""
from __future__ import annotations

from collections.abc import Callable

from .errors import DomainError, VersionConflict


def check_version(obj, version: int | None, *, current: Callable[[object], dict] | None = None) -> None:
    if version is None:
        raise DomainError("'version' is required: send the version you last read.")
    if obj.version != version:
        extra = {"current": current(obj)} if current else {"current_version": obj.version}
        raise VersionConflict(
            f"This {obj._meta.verbose_name} was changed by someone else (you edited version {version}, "
            f"it is now at {obj.version}). Reload it and apply your change again.",
            extra=extra,
        )
