"""Getting a job's batches to the broker, also when it is down at the moment they are made.

Messages are sent after the transaction that made the items commits (a worker must find them),
so a broker that is down right then would leave committed items that no message will ever
carry. Instead each item records when its message reached the broker (`dispatched_at`), and
the lease sweeper (sweeper.py) sends the pending items that have none: an outbox in the item
table itself. A message sent twice (the mark was lost) is harmless: claim_items skips items
that are done or held by a live worker.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models.functions import Now

from backend.core import outbox

from .models import ItemStatus, JobStatus, PrelabelJobImage

logger = logging.getLogger("razmetka.jobs")

# A pending item this old without a message was not sent by its own transaction's commit hook.
UNSENT_GRACE = timedelta(seconds=10)


def batches_of(image_ids: list[int]) -> list[list[int]]:
    size = max(1, int(getattr(settings, "PRELABEL_BATCH_SIZE", 4)))
    return [image_ids[i:i + size] for i in range(0, len(image_ids), size)]


def send_batches(job_id: int, image_ids: list[int]) -> int:
    """Send the items in batches and mark each sent batch; stop at the first failure (the broker
    is down: the rest wait for the sweeper). Returns how many items were sent."""
    from .tasks import run_batch

    sent = 0
    for batch in batches_of(sorted(image_ids)):
        if not outbox.publish(run_batch, args=[job_id, batch], queue=settings.QUEUE_GPU):
            logger.warning("job %s: %d images wait for the broker", job_id, len(image_ids) - sent)
            return sent
        try:
            PrelabelJobImage.objects.filter(
                job_id=job_id, image_id__in=batch, status=ItemStatus.PENDING, dispatched_at__isnull=True,
            ).update(dispatched_at=Now())
        except DatabaseError:  # sent but not marked: the sweeper sends it again, which is harmless
            logger.warning("job %s: could not mark a sent batch", job_id, exc_info=True)
        sent += len(batch)
    return sent


def send_unsent() -> int:
    """The sweeper's pass: send pending items of live jobs that never reached the broker. SKIP
    LOCKED, so two sweepers never send the same items; returns how many were sent."""
    unsent = PrelabelJobImage.objects.filter(
        status=ItemStatus.PENDING, dispatched_at__isnull=True, updated_at__lt=Now() - UNSENT_GRACE,
        job__status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
    )
    total = 0
    for job_id in sorted(set(unsent.values_list("job_id", flat=True).distinct())):
        with transaction.atomic():
            ids = list(
                unsent.filter(job_id=job_id).select_for_update(skip_locked=True, of=("self",))
                .values_list("image_id", flat=True)
            )
            if ids:
                sent = send_batches(job_id, ids)
                total += sent
                logger.warning("job %s: sent %d of %d images that never reached the broker", job_id, sent, len(ids))
    return total


def resend_lost() -> int:
    """The sweeper's pass for batches lost after they reached the broker (core/outbox.py says how
    a dying worker takes a message along): pending items of live jobs sent LOST_GRACE ago that no
    message waiting in the gpu queue or unacked carries are sent again. Items whose batch waits
    behind others are left alone. Returns how many items were sent again."""
    from .tasks import run_batch

    stale = PrelabelJobImage.objects.filter(
        status=ItemStatus.PENDING, dispatched_at__lt=Now() - outbox.LOST_GRACE,
        job__status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
    )
    job_ids = sorted(set(stale.values_list("job_id", flat=True).distinct()))
    if not job_ids:
        return 0
    carried = {(args[0], image) for args in outbox.waiting_args(run_batch.name, settings.QUEUE_GPU)
               if len(args) >= 2 and isinstance(args[1], list) for image in args[1]}
    total = 0
    for job_id in job_ids:
        with transaction.atomic():
            ids = list(stale.filter(job_id=job_id).select_for_update(skip_locked=True, of=("self",))
                       .values_list("image_id", flat=True))
            lost = [i for i in ids if (job_id, i) not in carried]
            if lost:
                # Unmarked, then sent and marked again: a failed send leaves them to send_unsent.
                PrelabelJobImage.objects.filter(job_id=job_id, image_id__in=lost).update(dispatched_at=None)
                sent = send_batches(job_id, lost)
                total += sent
                logger.warning("job %s: %d images sent over %s s ago were in no message (a worker died as it "
                               "took it); sent %d again", job_id, len(lost), int(outbox.LOST_GRACE.total_seconds()), sent)
    return total
