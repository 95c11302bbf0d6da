"""Tasks a commit must send, also when the broker is down at that moment.

An upload session, an export or import job, an evaluation or a training run is committed
"queued", then its task is sent from the commit hook. A broker down right then raised after the
commit: the API answered 503 "nothing was changed" for a record that was there, and no message
would ever carry it (it sat "queued" for ever, and a repeated finish of an upload is a no-op).
Now each record notes when its message reached the broker (`dispatched_at`); a failed send is
only logged, and the workers' sweeper (jobs/sweeper.py) sends the queued records that have none.
A message sent twice (the mark was lost) is harmless: each task claims its record once.
Pre-annotation jobs have the same outbox per image (jobs/dispatch.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models.functions import Now

logger = logging.getLogger("razmetka.outbox")

# A queued record this old without a message was not sent by its own commit hook.
UNSENT_GRACE = timedelta(seconds=10)


@dataclass(frozen=True)
class Kind:
    model: str  # app_label.Model
    task: str  # module:function of the Celery task; it takes the record's id
    queue: str  # the settings name of its queue
    state: str  # the field that says "queued"
    since: str  # the timestamp the grace counts from


KINDS = (
    Kind("images.UploadSession", "backend.images.tasks:process_upload_task", "QUEUE_CPU", "status", "updated_at"),
    Kind("exchange.ExportJob", "backend.exchange.tasks:run_export_task", "QUEUE_CPU", "status", "created_at"),
    Kind("exchange.ImportJob", "backend.exchange.tasks:run_import_task", "QUEUE_CPU", "status", "created_at"),
    Kind("learning.EvaluationRun", "backend.learning.tasks:run_evaluation", "QUEUE_GPU", "state", "created_at"),
    Kind("learning.TrainingRun", "backend.learning.tasks:run_training", "QUEUE_GPU", "state", "created_at"),
)
_BY_MODEL = {kind.model: kind for kind in KINDS}


def send_on_commit(record) -> None:
    """Send the record's task once the current transaction commits (at once outside one)."""
    kind = _BY_MODEL[record._meta.label]
    pk = record.pk
    transaction.on_commit(lambda: send(kind, pk))


def task_of(model: str):
    """(task, queue name) of a kind of record (app_label.Model): for a caller that marks the
    record itself (images/hot_upload.py)."""
    return _task_and_queue(_BY_MODEL[model])


def _task_and_queue(kind: Kind):
    module, name = kind.task.split(":")
    return getattr(import_module(module), name), getattr(settings, kind.queue)


def send(kind: Kind, pk: int) -> bool:
    """Publish the task and mark the record sent; False (logged) when the broker is unreachable."""
    task, queue = _task_and_queue(kind)
    if not publish(task, args=[pk], queue=queue):
        return False  # the sweeper sends it later
    try:
        apps.get_model(kind.model).objects.filter(pk=pk, dispatched_at__isnull=True).update(dispatched_at=Now())
    except DatabaseError:  # sent but not marked: the sweeper sends it again, which is harmless
        logger.warning("%s %s: could not mark its message sent", kind.model, pk, exc_info=True)
    return True


def send_unsent() -> int:
    """The sweeper's pass: send queued records whose message never reached the broker. SKIP
    LOCKED, so two sweepers never send the same record; returns how many were sent."""
    total = 0
    for kind in KINDS:
        unsent = apps.get_model(kind.model).objects.filter(
            **{kind.state: "queued", "dispatched_at__isnull": True, f"{kind.since}__lt": Now() - UNSENT_GRACE},
        )
        with transaction.atomic():
            pks = list(unsent.select_for_update(skip_locked=True).order_by("pk").values_list("pk", flat=True)[:1000])
            sent = 0
            for pk in pks:
                if not send(kind, pk):
                    break  # the broker is down: the rest wait for the next sweep
                sent += 1
        if pks:
            logger.warning("sent %d of %d %s that never reached the broker", sent, len(pks), kind.model)
        total += sent
    return total


def publish(task, *, args: list, queue: str, kwargs: dict | None = None) -> bool:
    """Publish a task once, after a commit; False (logged) when the broker is unreachable, never an
    exception (it would fail a request whose work already committed: a 503 "nothing was changed").
    A record to carry keeps an outbox mark for the sweeper (send above, jobs/dispatch.py); work
    derived from a committed change, which a later change redoes anyway (gallery learning,
    re-scoring), is simply lost.

    No publish retries, so an unreachable broker fails fast. No result: with the Redis result
    backend, a publish to a dead Redis otherwise spends ~20 s in the backend's subscribe and
    returns as if it had been sent."""
    try:
        task.apply_async(args=args, kwargs=kwargs or {}, queue=queue, retry=False, ignore_result=True)
    except Exception as exc:  # kombu's OperationalError, a socket error: the broker is unreachable
        logger.warning("%s %s not sent, the broker is unreachable (%s: %s)", task.name, args, type(exc).__name__, exc)
        return False
    return True
