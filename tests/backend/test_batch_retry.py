"""A batch whose claim meets a PostgreSQL outage is run again once the database is back.

Before run_batch retried on DB_DOWN, such a batch was acked as failed while its items stayed
pending with their message sent: nothing (not the sweeper, not the broker) ever sent them again,
and the chaos drill's job stuck at 12/60. Here a real worker reaches the database only through a
proxy the test cuts while the batch is delivered."""
from __future__ import annotations

import os
import time

import pytest
from amqp.exceptions import ChannelError
from django.db import connection

from backend.annotations.models import Annotation
from backend.images.models import Image
from backend.jobs import services
from backend.jobs.models import ItemStatus, JobStatus

from ..db_proxy import DbProxy
from ..worker import start_worker, stop_worker
from .test_job_recovery import model_annotations_per_image
from .test_jobs import build_project, wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def queue_size(queue: str) -> int:
    from backend.config.celery import app

    with app.connection_for_read() as conn:
        try:
            return conn.default_channel.queue_declare(queue, passive=True).message_count
        except ChannelError:  # Redis drops an emptied list: no queue is an empty queue
            return 0


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_batch_whose_claim_hits_a_database_outage_runs_once_the_database_is_back(settings, tiny_models_config, django_db_setup):
    prefix = f"dbretry{os.getpid()}-{time.monotonic_ns()}-"
    settings.QUEUE_CPU, settings.QUEUE_GPU = f"{prefix}cpu", f"{prefix}gpu"
    settings.PRELABEL_BATCH_SIZE = 8  # one batch: the only message, so "taken from the queue" means "its claim ran"
    owner, project, _ = build_project(n_images=3)

    proxy = DbProxy(connection.settings_dict)
    try:
        env = {"RAZMETKA_ML_CONFIG": tiny_models_config, "RAZMETKA_QUEUE_PREFIX": prefix, "DATABASE_URL": proxy.url()}
        worker = start_worker(extra_env=env, name="db-retry")
        try:
            proxy.refuse()  # PostgreSQL "restarts": the worker's connections are cut and new ones closed
            job = services.start_job(project=project, user=owner)  # the test's own connection is direct
            wait_until(lambda: queue_size(settings.QUEUE_GPU) == 0, 60, "the worker to take the batch")
            wait_until(lambda: proxy.refused > 0, 30, "the worker's claim to meet the outage")
            time.sleep(2)  # the claim fails within milliseconds of the refusal; without the retry the message is gone now
            assert job.items.filter(status=ItemStatus.PENDING).count() == 3, "the failed claim committed nothing"
            refused = proxy.refused

            proxy.open()
            reopened = time.monotonic()
            try:
                job = wait_for_job(job.pk, timeout=120)
            except AssertionError as exc:
                pytest.fail(f"the batch whose claim met the outage was never run again ({exc}); "
                            "run_batch must retry it when claim_items raises DB_DOWN")
            back_s = time.monotonic() - reopened
        finally:
            stop_worker(worker)
    finally:
        proxy.close()

    print(f"\nthe worker was refused {refused} connections during the outage; the job was done {back_s:.1f} s after it")
    assert job.status == JobStatus.DONE and (job.total, job.processed, job.failed) == (3, 3, 0), job.error
    assert set(job.items.values_list("status", flat=True)) == {ItemStatus.DONE}
    assert list(job.items.values_list("attempts", flat=True)) == [1, 1, 1], "the refused claim took no attempt"
    assert set(Image.objects.filter(project=project).values_list("status", flat=True)) == {"prelabeled"}
    assert Annotation.objects.filter(project=project, job_id=job.pk).exists(), "the tiny pipeline proposed nothing"
    model_annotations_per_image(job)
