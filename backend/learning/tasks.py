"""Celery tasks (gpu queue): thin wrappers that run an evaluation or a training by id."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from backend.core.task_retry import run_or_retry

from . import services
from .models import EvaluationRun, RunState, TrainingRun

logger = logging.getLogger("razmetka.learning")


def _guarded(run, work) -> None:
    """Any failure ends the run with a message a person can act on; nothing is half-registered
    (a version is written in one transaction at the very end)."""
    if run.state in (RunState.DONE, RunState.FAILED):
        return  # a redelivered message of a finished run
    services.mark_running(run)
    try:
        work(run)
    except SoftTimeLimitExceeded:
        services.fail(run, "timed out (CELERY_TASK_TIME_LIMIT): use fewer images, epochs or steps")
    except Exception as exc:  # not configured, a model that cannot load, no usable data
        logger.exception("%s %s failed", type(run).__name__, run.pk)
        services.fail(run, f"{type(exc).__name__}: {exc}")


# A run that met a PostgreSQL outage before it could record anything is run again (core/task_retry.py).
@shared_task(name="learning.run_evaluation", acks_late=True, bind=True, max_retries=None)
def run_evaluation(self, run_id: int) -> None:
    run_or_retry(self, _evaluation, run_id)


@shared_task(name="learning.run_training", acks_late=True, bind=True, max_retries=None)
def run_training(self, run_id: int) -> None:
    run_or_retry(self, _training, run_id)


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
