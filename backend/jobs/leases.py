"""Leases on the images of a running batch, so work held by a dead worker comes back quickly.

A worker that claims a batch leases its items (owner + `leased_until`, on the database's clock so
hosts with skewed clocks agree) and a heartbeat thread renews the lease while the batch runs. A
running item whose lease has lapsed was held by a worker that died (kill -9, OOM, lost host): the
sweeper (sweeper.py) re-queues it within about a minute instead of waiting for the broker's
visibility timeout (an hour by default). A message for an item that a live worker holds, or that
is already done, does nothing (services.claim_items), so no item runs twice at once and none is
written twice.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Now

from .models import ItemStatus, PrelabelJobImage

logger = logging.getLogger("razmetka.jobs")


def lease_seconds() -> int:
    return max(1, int(settings.JOB_LEASE_SECONDS))


def lease_expiry():
    """`leased_until` for a lease taken or renewed now (an SQL expression: the database's clock)."""
    return Now() + timedelta(seconds=lease_seconds())


def new_owner() -> str:
    """Who holds a lease: host and pid for people reading the table, plus a token per batch run."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def live_lease() -> Q:
    """Items a live worker is running right now: leave them alone."""
    return Q(status=ItemStatus.RUNNING, leased_until__gt=Now())


def lapsed_lease() -> Q:
    """Running items nobody renews: their worker died. (No lease at all: claimed before leases existed.)"""
    return Q(status=ItemStatus.RUNNING) & (Q(leased_until__lte=Now()) | Q(leased_until__isnull=True))


def renew(*, job_id: int, owner: str) -> int:
    """Extend this batch run's leases on its still-running items; returns how many."""
    with transaction.atomic():
        # Lock in id order, like claim_items, so a concurrent claim of the same items cannot deadlock.
        ids = list(
            PrelabelJobImage.objects.select_for_update()
            .filter(job_id=job_id, lease_owner=owner, status=ItemStatus.RUNNING)
            .order_by("id").values_list("pk", flat=True)
        )
        return PrelabelJobImage.objects.filter(pk__in=ids).update(leased_until=lease_expiry()) if ids else 0


class Heartbeat:
    """Renews a batch's leases every JOB_HEARTBEAT_SECONDS from a thread while the batch runs
    (the model pass blocks the task's own thread for as long as it takes)."""

    def __init__(self, *, job_id: int, owner: str):
        self.job_id, self.owner = job_id, owner
        self.interval = max(0.2, float(settings.JOB_HEARTBEAT_SECONDS))
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if renew(job_id=self.job_id, owner=self.owner):
                        self.renewals += 1
                except DatabaseError:
                    # The next beat tries again; a lease lost meanwhile is re-queued, and the
                    # idempotent write keeps the second run from writing the image twice.
                    logger.warning("renewing the leases of job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection
