"""Celery tasks of the gallery: thin, they take ids and call the learning service."""
from __future__ import annotations

from celery import shared_task

from backend.core.task_retry import run_or_retry

from . import learning


@shared_task(name=learning.TASK_NAME, acks_late=True, bind=True, max_retries=None)
def learn_from_change(self, annotation_id: int, version: int) -> dict:
    """A reviewer's class fix joins the gallery (idempotent per change: see gallery.learning),
    also when it met a database outage first (core/task_retry.py)."""
    return run_or_retry(self, learning.learn_from_change, annotation_id=annotation_id, version=version)
