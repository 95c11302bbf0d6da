"""Tasks that meet a PostgreSQL outage run again once it is back, instead of failing.

A task whose first query fails while PostgreSQL restarts raised, Celery acked its message as
failed, and the record it was to move on (an upload session, an export or import job) stayed
"queued" for ever: nothing sends that message again. Such tasks are idempotent (each claims its
record once), so sending them again every few seconds until the database answers is safe.
"""
from __future__ import annotations

import logging

from django import db

logger = logging.getLogger("razmetka.tasks")

# PostgreSQL unreachable (restarting): an outage, not a property of the work.
DB_DOWN = (db.OperationalError, db.InterfaceError)
RETRY_AFTER_S = 5


def run_or_retry(task, fn, /, *args, **kwargs):
    """fn(*args, **kwargs); while the database is down, the bound `task` is sent again in
    RETRY_AFTER_S (Celery's retry: this run ends, the message is acked, a new one is queued)."""
    try:
        return fn(*args, **kwargs)
    except DB_DOWN as exc:
        logger.warning("%s %s %s: the database is unreachable, retrying in %s s (%s)", task.name, args, kwargs,
                       RETRY_AFTER_S, exc)
        raise task.retry(exc=exc, countdown=RETRY_AFTER_S) from None
