"""What happens after the gallery changes. Extended by the jobs app (embedding + re-scoring)."""
from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

_listeners: list[Callable[[int], None]] = []


def on_gallery_changed(listener: Callable[[int], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def gallery_changed(project_id: int) -> None:
    from .versions import current_version

    current_version(project_id)  # the new set becomes a version now, in the caller's transaction
    for listener in _listeners:
        transaction.on_commit(lambda listener=listener: listener(project_id))
