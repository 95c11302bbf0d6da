"""Thin Celery tasks: they take a job id and hand over to the services. A run that meets a
PostgreSQL outage is sent again until it answers (core/task_retry.py). An export's retry takes
back its running job and starts over; so does an import's, whose writes commit together with
its job's "done" (a job still running applied nothing; a done one is left alone)."""
from celery import shared_task

from backend.core.task_retry import run_or_retry


@shared_task(name="exchange.run_export", bind=True, max_retries=None)
def run_export_task(self, job_id: int) -> None:
    from .services import run_export

    run_or_retry(self, run_export, job_id=job_id, resume=self.request.retries > 0)


@shared_task(name="exchange.run_import", bind=True, max_retries=None)
def run_import_task(self, job_id: int) -> None:
    from .services import run_import

    run_or_retry(self, run_import, job_id=job_id, resume=self.request.retries > 0)
