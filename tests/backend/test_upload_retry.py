"""An upload or an export whose task meets a PostgreSQL outage runs once the database is back.

Before, the task's first query failed, Celery acked its message as failed and the upload session
(or export job) stayed "queued" for ever: the browser waited on it and nothing would ever run it.
A real worker reaches the database only through a proxy the test cuts."""
from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from backend.images.models import Image, UploadSession

from ..db_proxy import DbProxy
from ..worker import start_worker, stop_worker
from .factories import make_image, make_project, make_user
from .test_batch_retry import queue_size, wait_until
from .test_chunked_uploads import noisy_jpeg, send_all

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_an_upload_whose_processing_meets_a_database_outage_is_processed_once_it_is_back(settings, client_for):
    prefix = f"upretry{os.getpid()}-{time.monotonic_ns()}-"
    settings.QUEUE_CPU, settings.QUEUE_GPU = f"{prefix}cpu", f"{prefix}gpu"
    owner = make_user("outage-uploader")
    project = make_project(owner)
    data = noisy_jpeg(11)

    proxy = DbProxy(connection.settings_dict)
    try:
        worker = start_worker(queues=[settings.QUEUE_CPU], name="upload-retry",
                              extra_env={"RAZMETKA_QUEUE_PREFIX": prefix, "DATABASE_URL": proxy.url()})
        try:
            proxy.refuse()  # PostgreSQL "restarts" for the worker; the test's own connection is direct
            sid = send_all(client_for(owner), project, "during-outage.jpg", data, chunk=8000)["id"]
            wait_until(lambda: queue_size(settings.QUEUE_CPU) == 0, 60, "the worker to take the upload")
            wait_until(lambda: proxy.refused > 0, 30, "the worker to meet the outage")
            time.sleep(2)
            session = UploadSession.objects.get(pk=sid)
            assert session.status == "queued" and session.result in (None, {}), "the outage failed nothing"

            proxy.open()
            wait_until(lambda: UploadSession.objects.get(pk=sid).status in ("done", "failed"), 60,
                       "the upload to be processed after the outage (it must be retried, not dropped)")
        finally:
            stop_worker(worker)
    finally:
        proxy.close()

    session = UploadSession.objects.get(pk=sid)
    assert session.status == "done", session.result
    [image_id] = session.result["created"]
    assert Image.objects.get(pk=image_id).size_bytes == len(data)


def test_an_export_started_during_a_database_outage_runs_once_it_is_back(settings):
    from backend.exchange.services import start_export

    prefix = f"exretry{os.getpid()}-{time.monotonic_ns()}-"
    settings.QUEUE_CPU, settings.QUEUE_GPU = f"{prefix}cpu", f"{prefix}gpu"
    owner = make_user("outage-exporter")
    project = make_project(owner)
    make_image(project, seed=1)  # something to list: an export of nothing is refused at its start
    proxy = DbProxy(connection.settings_dict)
    try:
        worker = start_worker(queues=[settings.QUEUE_CPU], name="export-retry",
                              extra_env={"RAZMETKA_QUEUE_PREFIX": prefix, "DATABASE_URL": proxy.url()})
        try:
            proxy.refuse()
            job = start_export(project=project, user=owner, format="coco", include_empty_images=True)
            wait_until(lambda: queue_size(settings.QUEUE_CPU) == 0, 60, "the worker to take the export")
            wait_until(lambda: proxy.refused > 0, 30, "the worker to meet the outage")
            time.sleep(2)
            job.refresh_from_db()
            assert job.status == "queued"
            proxy.open()
            wait_until(lambda: type(job).objects.get(pk=job.pk).status in ("done", "failed"), 60,
                       "the export to run after the outage (it must be retried, not dropped)")
        finally:
            stop_worker(worker)
    finally:
        proxy.close()
    job.refresh_from_db()
    assert job.status == "done" and job.result_file, job.error
