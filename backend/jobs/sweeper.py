"""Re-queue job items whose worker died, fail the exports, imports, evaluations and trainings whose
worker died (core/liveness.py), and send items and records that never reached the broker
(dispatch.py, core/outbox.py), from a daemon thread in every Celery worker.

Why a thread in each worker and not a beat process: `make run` and compose start no scheduler,
and a single scheduler would be one more piece that can die. Every worker (cpu and gpu) sweeps
every JOB_SWEEP_SECONDS; the write takes its rows with SKIP LOCKED and re-checks the lapse under
the lock, so several sweepers never re-queue the same item twice. Started on Celery's
`worker_ready` (backend/config/celery.py); the web process and tests' own process never sweep.
"""
from __future__ import annotations

import logging
import random
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from redis.exceptions import RedisError

from backend.core import liveness, outbox

from . import dispatch, leases, services
from .models import PrelabelJobImage

logger = logging.getLogger("razmetka.jobs")

_started = threading.Lock()
_thread: threading.Thread | None = None


def sweep_once() -> dict:
    """One pass over every lapsed lease; returns what it did, summed over jobs."""
    totals = {"requeued": 0, "failed": 0, "cancelled": 0, "sent": 0, "records_sent": 0}
    job_ids = PrelabelJobImage.objects.filter(leases.lapsed_lease()).values_list("job_id", flat=True).distinct()
    for job_id in sorted(set(job_ids)):
        try:
            counts = services.requeue_lapsed(job_id=job_id)
        except DatabaseError:  # e.g. a deadlock victim: this job waits for the next sweep, the others go on
            logger.warning("sweeping job %s failed", job_id, exc_info=True)
            continue
        if any(counts.values()):
            logger.warning("job %s: work of a dead worker recovered: %s", job_id, counts)
        for key, value in counts.items():
            totals[key] += value
    totals["sent"] = dispatch.send_unsent()
    totals["records_sent"] = outbox.send_unsent()  # uploads, exports, imports, evaluations, trainings
    try:
        totals["records_sent"] += outbox.resend_lost()  # sent, but a dying worker took the message with it
        totals["sent"] += dispatch.resend_lost()  # the same for job batches
    except RedisError:
        logger.warning("could not look for lost messages (Redis unreachable)", exc_info=True)
    try:
        totals["stopped"] = liveness.sweep()  # exports, imports, evaluations, trainings whose worker died
    except RedisError:
        logger.warning("could not look for stopped runs (Redis unreachable)", exc_info=True)
    return totals


def _loop(interval: float) -> None:
    while True:  # the thread ends with its (daemon) process
        try:
            close_old_connections()
            sweep_once()
        except DatabaseError:
            logger.warning("lease sweep failed; trying again in %s s", interval, exc_info=True)
        except Exception:  # a bug must not stop recovery for the life of the worker
            logger.exception("lease sweep failed")
        finally:
            connection.close()  # no idle connection held between sweeps
        # Jitter: workers started together do not sweep in lockstep.
        time.sleep(interval * random.uniform(0.8, 1.2))


def start() -> threading.Thread | None:
    """Start this process's sweeper (once); JOB_SWEEP_SECONDS = 0 turns it off."""
    global _thread
    interval = float(settings.JOB_SWEEP_SECONDS)
    if interval <= 0:
        return None
    with _started:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, args=(interval,), name="job-lease-sweeper", daemon=True)
            _thread.start()
            logger.info("job lease sweeper started (every %s s, leases of %s s)", interval, leases.lease_seconds())
    return _thread
