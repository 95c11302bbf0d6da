"""Celery tasks (gpu queue): thin wrappers that run an evaluation or a training by id."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from backend.core.memory import give_back
from backend.core.task_retry import DB_DOWN, riding_out_outages, run_or_retry
from backend.jobs.engine import item_error
from ml.errors import TrainingRefused

from . import services
from .models import FINAL_STATES, EvaluationRun, RunState, TrainingRun
from .selectors import ModelUnavailable

logger = logging.getLogger("razmetka.learning")


def _guarded(run, work) -> None:
    """Any failure ends the run with a message a person can act on; nothing is half-registered
    (a version is written in one transaction at the very end). A run cancelled or deleted with
    its project stops at the worker's next check, with one info line and no traceback."""
    name = type(run).__name__
    if run.state in FINAL_STATES or not services.mark_running(run):
        return  # a redelivered message of a finished run, or one cancelled / deleted while queued
    try:
        work(run)
    except DB_DOWN:
        # PostgreSQL restarting under the run: no verdict on it. run_or_retry runs it again once the
        # database answers (the run stays "running"; mark_running takes it again). It failed with
        # "OperationalError: terminating connection due to administrator command" (black-box round 16).
        raise
    except services.RunStopped as stop:
        logger.info("%s %s was %s while it ran; it stops here, nothing registered", name, run.pk, stop.reason)
    except SoftTimeLimitExceeded:
        if not riding_out_outages(services.fail, run, "timed out (CELERY_TASK_TIME_LIMIT): use fewer images, epochs or steps"):
            logger.info("%s %s timed out after it was cancelled or deleted", name, run.pk)
    except Exception as exc:  # not configured, a model that cannot load, no usable data
        # The verdict waits out a PostgreSQL restart the run met: its first query on the broken
        # connection raised here, and the whole training was sent again from step 0 (black-box round 17).
        if not riding_out_outages(type(run).objects.filter(pk=run.pk, state=RunState.RUNNING).exists):
            # Its data went away with the project (or it was cancelled) under it: not a fault.
            logger.info("%s %s stopped (%s: %s) after it was cancelled or deleted", name, run.pk, type(exc).__name__, exc)
            return
        if isinstance(exc, (ModelUnavailable, TrainingRefused)):  # its message says what to do
            logger.warning("%s %s failed: %s", name, run.pk, exc)
            riding_out_outages(services.fail, run, str(exc))
            return
        logger.exception("%s %s failed", name, run.pk)
        riding_out_outages(services.fail, run, item_error(exc))  # no server paths (a model file the store refused named one)
    finally:
        # A training's tensors and batches are freed by now: hand their pages back, or the worker
        # keeps the run's peak (6.1 of 7.5 GB) while it goes on with small jobs.
        give_back(collect=True)


# A run that met a PostgreSQL outage before it could record anything is run again (core/task_retry.py).
@shared_task(name="learning.run_evaluation", acks_late=True, bind=True, max_retries=None)
def run_evaluation(self, run_id: int) -> None:
    run_or_retry(self, _evaluation, run_id)


@shared_task(name="learning.run_training", acks_late=True, bind=True, max_retries=None)
def run_training(self, run_id: int) -> None:
    run_or_retry(self, _training, run_id)


# How often rescore_after_jobs looks whether the jobs it waits for are over; it gives up after a day.
JOBS_POLL_S = 5
JOBS_POLL_MAX = 24 * 3600 // JOBS_POLL_S


@shared_task(name="learning.rescore_after_jobs", acks_late=True, bind=True, max_retries=JOBS_POLL_MAX)
def rescore_after_jobs(self, project_id: int, job_ids: list[int]) -> bool:
    """A head activated or retired while pre-annotation jobs ran: those jobs match with the head
    frozen at their start, so what they write after the decision (and what a batch computed before
    it writes afterwards) misses the activation's own re-scoring. Once they are over, the pending
    objects are re-scored again, with the head active then. True when it sent the re-scoring."""
    from backend.jobs.models import FINAL_JOB_STATES, PrelabelJob

    def live() -> bool:
        return PrelabelJob.objects.filter(pk__in=job_ids).exclude(status__in=FINAL_JOB_STATES).exists()

    if run_or_retry(self, live):
        raise self.retry(countdown=JOBS_POLL_S)
    from backend.projects.models import Project

    if not Project.objects.filter(pk=project_id).exists():
        return False  # deleted meanwhile
    from django.conf import settings

    from backend.core import outbox
    from backend.jobs.tasks import rescore

    return outbox.publish(rescore, args=[project_id], queue=settings.QUEUE_CPU)


def _evaluation(run_id: int) -> None:
    from . import evaluating

    run = EvaluationRun.objects.select_related("project", "model_version").filter(pk=run_id).first()
    if run is not None:
        _guarded(run, evaluating.run)


def _training(run_id: int) -> None:
    from . import training

    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is not None:
        _guarded(run, training.run)
