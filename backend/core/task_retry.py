"""Tasks that meet a PostgreSQL outage run again once it is back, instead of failing.

A task whose first query fails while PostgreSQL restarts raised, Celery acked its message as
failed, and the record it was to move on (an upload session, an export or import job) stayed
"queued" for ever: nothing sends that message again. Such tasks are idempotent (each claims its
record once), so sending them again every few seconds until the database answers is safe.
"""
from __future__ import annotations

import logging
import time

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


# How long a long run (a training's step, an evaluation's image) waits for PostgreSQL to come back
# before its check between steps gives up (then run_or_retry sends the whole task again).
RIDE_OUT_S = 60


def riding_out_outages(fn, /, *args, within: float | None = None, **kwargs):
    """fn(*args, **kwargs) for a long run's check between steps (progress, "still live?"), outside
    any transaction: a PostgreSQL restart of a few seconds broke the run's connection, and the
    next check started a Mask R-CNN training over from scratch (black-box round 16b). The broken
    connection is dropped and the call tried again every few seconds, for up to `within` seconds
    (RIDE_OUT_S unless given)."""
    deadline = time.monotonic() + (RIDE_OUT_S if within is None else within)
    while True:
        try:
            return fn(*args, **kwargs)
        except DB_DOWN as exc:
            if db.connection.in_atomic_block or time.monotonic() >= deadline:
                raise
            logger.warning("%s: the database is unreachable, trying again in %s s (%s)", getattr(fn, "__name__", fn),
                           RETRY_AFTER_S, exc)
            db.connection.close()  # a new one on the next query
            time.sleep(RETRY_AFTER_S)
