"""Tasks a commit must send, also when the broker is down at that moment.

An upload session, an export or import job, an evaluation or a training run is committed
"queued", then its task is sent from the commit hook. A broker down right then raised after the
commit: the API answered 503 "nothing was changed" for a record that was there, and no message
would ever carry it (it sat "queued" for ever, and a repeated finish of an upload is a no-op).
Now each record notes when its message reached the broker (`dispatched_at`); a failed send is
only logged, and the workers' sweeper (jobs/sweeper.py) sends the queued records that have none.
A message sent twice (the mark was lost) is harmless: each task claims its record once.
Pre-annotation jobs have the same outbox per image (jobs/dispatch.py).

A message can also be lost after it reached the broker: kombu's Redis transport takes a message
off the queue with BRPOP and only then, in the worker, records it as unacked. A worker killed in
between (an idle gpu worker blocked in BRPOP, kill -9 within ~20 ms of a publish) takes the
message with it: it is in neither the queue nor `unacked`, and acks_late / reject_on_worker_lost
cannot help (the worker never saw it). A queued record "sent" LOST_GRACE ago that no worker has
started and whose message is nowhere in the broker is therefore sent again (resend_lost).
"""
from __future__ import annotations

import base64
import json
import logging
import os
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
# A queued record sent this long ago and still not started is looked for in the broker; when its
# message is in neither its queue nor `unacked`, it was lost and is sent again.
LOST_GRACE = timedelta(seconds=int(os.environ.get("RAZMETKA_LOST_GRACE_S", "60")))


@dataclass(frozen=True)
class Kind:
    model: str  # app_label.Model
    task: str  # module:function of the Celery task; it takes the record's id
    queue: str  # the settings name of its queue
    state: str  # the field that says "queued"
    since: str  # the timestamp the grace counts from
    started: str | None = None  # the field its worker sets when it takes the record (resend_lost)


KINDS = (
    Kind("images.UploadSession", "backend.images.tasks:process_upload_task", "QUEUE_CPU", "status", "updated_at"),
    Kind("exchange.ExportJob", "backend.exchange.tasks:run_export_task", "QUEUE_CPU", "status", "created_at",
         "started_at"),
    Kind("exchange.ImportJob", "backend.exchange.tasks:run_import_task", "QUEUE_CPU", "status", "created_at",
         "started_at"),
    Kind("learning.EvaluationRun", "backend.learning.tasks:run_evaluation", "QUEUE_GPU", "state", "created_at",
         "started_at"),
    Kind("learning.TrainingRun", "backend.learning.tasks:run_training", "QUEUE_GPU", "state", "created_at",
         "started_at"),
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


def resend_lost() -> int:
    """The sweeper's pass for messages lost after they reached the broker (see the module's
    docstring): a queued record sent LOST_GRACE ago, not started, whose message is neither in its
    queue nor unacked, is sent again (its dispatched_at restarts the grace, so a record is looked
    at again only LOST_GRACE later). A message found waiting (the worker is busy or not running)
    is left alone: nothing piles up. Returns how many were sent again."""
    total = 0
    for kind in KINDS:
        if kind.started is None:
            continue
        model = apps.get_model(kind.model)
        stale = model.objects.filter(**{kind.state: "queued", "dispatched_at__lt": Now() - LOST_GRACE,
                                        f"{kind.started}__isnull": True})
        with transaction.atomic():
            pks = list(stale.select_for_update(skip_locked=True).order_by("pk").values_list("pk", flat=True)[:1000])
            if not pks:
                continue
            task, queue = _task_and_queue(kind)
            waiting = _in_broker(task.name, queue)
            lost = [pk for pk in pks if pk not in waiting]
            sent = 0
            for pk in lost:
                if not publish(task, args=[pk], queue=queue):
                    break  # the broker is down: the rest wait for the next sweep
                model.objects.filter(pk=pk).update(dispatched_at=Now())
                sent += 1
        if lost:
            logger.warning("%s %s: queued for over %s s and their message was nowhere in the broker (a worker "
                           "died as it took it); sent %d again", kind.model, lost, int(LOST_GRACE.total_seconds()), sent)
        total += sent
    return total


# kombu's Redis transport: a queue of priority p > 0 is the list "<queue>\x06\x16<p>".
_PRIORITY_SEP, _PRIORITY_STEPS = "\x06\x16", (0, 3, 6, 9)


def _in_broker(task_name: str, queue: str) -> set:
    """The first arguments (record ids) of `task_name` messages waiting in `queue` or unacked
    (taken by a worker that has not acknowledged them yet). Raises RedisError when unreachable."""
    return {args[0] for args in waiting_args(task_name, queue) if args}


def waiting_args(task_name: str, queue: str) -> list[list]:
    """The positional arguments of each `task_name` message waiting in `queue` or unacked.
    Raises RedisError when Redis is unreachable."""
    from . import redis_client

    client = redis_client.shared()
    raw = []
    for step in _PRIORITY_STEPS:
        raw += client.lrange(queue if step == 0 else f"{queue}{_PRIORITY_SEP}{step}", 0, -1)
    for value in client.hvals("unacked"):
        try:
            raw.append(json.dumps(json.loads(value)[0]))  # [message, exchange, routing key]
        except (ValueError, TypeError, IndexError, KeyError):
            continue
    found = []
    for item in raw:
        try:
            message = json.loads(item)
            if message.get("headers", {}).get("task") != task_name:
                continue
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            found.append(list(json.loads(body)[0]))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            continue
    return found


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
