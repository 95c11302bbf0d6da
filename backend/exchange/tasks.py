"""Thin Celery tasks: they take a job id and hand over to the services."""
from celery import shared_task


@shared_task(name="exchange.run_export")
def run_export_task(job_id: int) -> None:
    from .services import run_export

    run_export(job_id=job_id)


@shared_task(name="exchange.run_import")
def run_import_task(job_id: int) -> None:
    from .services import run_import

    run_import(job_id=job_id)
