"""A running export, import, evaluation or training whose worker died ends as failed, with a
message, instead of showing "running" for ever.

The worker that runs one of these tasks keeps a key in Redis alive while it runs (a beat every
BEAT_S, expiring after TTL_S). The workers' sweeper (jobs/sweeper.py) fails a running record whose
key has been gone for TTL_S on two looks in a row: its worker was killed (out of memory, kill -9,
a lost host). Before, a Mask R-CNN training that ran the gpu worker out of memory stayed "running
0 %" (the solo worker dies whole, its unacked message comes back only after the visibility timeout
and then runs into the same kill), and an export or import whose worker died was never taken
back (a redelivered message takes only a queued job).

Hooked on Celery's task_prerun / task_postrun for the task names below, so the tasks themselves
stay thin. Pre-annotation jobs have leases of their own (jobs/leases.py); uploads a processing
lease (images/upload_sessions.py).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from celery.signals import task_postrun, task_prerun
from django.apps import apps
from django.conf import settings
from django.db.models.functions import Now

from . import redis_client

logger = logging.getLogger("razmetka.liveness")

# RAZMETKA_ALIVE_TTL_S: shorter for tests that kill a worker and wait for the verdict.
TTL_S = int(os.environ.get("RAZMETKA_ALIVE_TTL_S", "45"))
BEAT_S = max(1, TTL_S // 4)
STOPPED = ("The worker running this stopped before it finished (it ran out of memory or was killed); "
           "nothing was saved. Start it again; if it stops again, {hint}.")


@dataclass(frozen=True)
class Kind:
    task: str  # the Celery task name; its first argument is the record's id
    model: str  # app_label.Model
    state: str  # the field that says "running"
    hint: str  # what to try next, in the message


KINDS = (
    Kind("learning.run_evaluation", "learning.EvaluationRun", "state", "measure fewer images"),
    Kind("learning.run_training", "learning.TrainingRun", "state",
         "train with smaller images (min_size, max_size), fewer RoIs per image or a smaller batch"),
    Kind("exchange.run_export", "exchange.ExportJob", "status", "export fewer images at a time"),
    Kind("exchange.run_import", "exchange.ImportJob", "status", "split the file into smaller ones"),
)
_BY_TASK = {kind.task: kind for kind in KINDS}
# A training's advice by what it trains: the Mask R-CNN settings above were given for a head too,
# whose trainings refuse them (400 "Unknown training setting(s): min_size").
HINTS_BY_MODEL_KIND = {"head": "train with fewer epochs or a smaller hidden layer (hidden)"}


def _key(kind: Kind, pk) -> str:
    # Named by database: a test run's records and a `make run`'s share one Redis and their ids.
    return f"razmetka:alive:{settings.DATABASES['default']['NAME']}:{kind.model}:{pk}"


class _Beat:
    def __init__(self, key: str):
        self.key, self.stop = key, threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"alive-{key}", daemon=True)

    def _set(self) -> None:
        try:
            redis_client.shared().set(self.key, 1, ex=TTL_S)
        except Exception as exc:  # Redis down: the sweeper cannot look either, and the next beat tries again
            logger.warning("could not mark %s alive: %s: %s", self.key, type(exc).__name__, exc)  # one line a beat

    def _run(self) -> None:
        while not self.stop.wait(BEAT_S):
            self._set()

    def start(self) -> None:
        self._set()
        self.thread.start()

    def end(self) -> None:
        self.stop.set()
        try:
            redis_client.shared().delete(self.key)
        except Exception:
            pass  # it expires by itself


_beats: dict[str, _Beat] = {}


@task_prerun.connect
def _start_beat(task_id=None, task=None, args=None, **_):
    kind = _BY_TASK.get(getattr(task, "name", ""))
    if kind is None or not args:
        return
    beat = _Beat(_key(kind, args[0]))
    beat.start()
    _beats[task_id] = beat


@task_postrun.connect
def _end_beat(task_id=None, **_):
    beat = _beats.pop(task_id, None)
    if beat is not None:
        beat.end()


# Records seen running without a beat: (model, pk) -> when first seen so, in this process.
_suspects: dict[tuple[str, int], float] = {}


def _fail(kind: Kind, pk: int) -> bool:
    """Mark one record failed if it is still running; True if this call did."""
    model = apps.get_model(kind.model)
    message = STOPPED.format(hint=kind.hint)
    if kind.model in ("exchange.ImportJob", "exchange.ExportJob"):
        from backend.exchange.services import fail_if_running  # the same end as a run that raised

        return fail_if_running(model, pk, message)
    from backend.learning import services  # its fail() tells the Models page

    run = model.objects.filter(pk=pk, **{kind.state: "running"}).first()
    if run is None:
        return False
    if getattr(run, "kind", None) in HINTS_BY_MODEL_KIND:  # a head takes none of Mask R-CNN's settings
        message = STOPPED.format(hint=HINTS_BY_MODEL_KIND[run.kind])
    services.fail(run, message)
    return True


def sweep(now: float | None = None) -> int:
    """Fail the running records whose worker stopped beating; returns how many. A record is failed
    only when its key has been missing for TTL_S on two looks (a Redis restart loses every key,
    and the next beat, within BEAT_S, sets it again)."""
    now = time.monotonic() if now is None else now
    seen: set[tuple[str, int]] = set()
    failed = 0
    for kind in KINDS:
        model = apps.get_model(kind.model)
        started_before = Now() - timedelta(seconds=TTL_S)
        pks = list(model.objects.filter(**{kind.state: "running", "started_at__lt": started_before})
                   .values_list("pk", flat=True)[:1000])
        if not pks:
            continue
        alive = redis_client.shared().pipeline()
        for pk in pks:
            alive.exists(_key(kind, pk))
        for pk, exists in zip(pks, alive.execute()):
            if exists:
                continue
            seen.add((kind.model, pk))
            first = _suspects.setdefault((kind.model, pk), now)
            if now - first >= TTL_S and _fail(kind, pk):
                logger.warning("%s %s: its worker stopped while running it; marked failed", kind.model, pk)
                failed += 1
    for gone in set(_suspects) - seen:
        del _suspects[gone]
    return failed
