"""Celery tasks of the gallery: thin, they take ids and call the learning service."""
from __future__ import annotations

from celery import shared_task

from . import learning


@shared_task(name=learning.TASK_NAME, acks_late=True)
def learn_from_change(annotation_id: int, version: int) -> dict:
    """A reviewer's class fix joins the gallery (idempotent per change: see gallery.learning)."""
    return learning.learn_from_change(annotation_id=annotation_id, version=version)
