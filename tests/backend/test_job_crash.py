"""A worker killed with SIGKILL mid-job loses and duplicates nothing once another worker runs."""
import os
import time

import pytest

from backend.annotations.models import Annotation
from backend.jobs import services
from backend.jobs.models import ItemStatus, JobStatus, PrelabelJob

from ..worker import start_worker, stop_worker
from .test_jobs import build_project, wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_sigkill_mid_job_then_a_new_worker_finishes_it(settings, tiny_models_config, django_db_setup):
    # Private queues: the session's shared worker must not help out here.
    prefix = f"crash{os.getpid()}-"
    settings.QUEUE_CPU, settings.QUEUE_GPU = f"{prefix}cpu", f"{prefix}gpu"
    settings.PRELABEL_BATCH_SIZE = 1
    env = {
        "RAZMETKA_ML_CONFIG": tiny_models_config,
        "RAZMETKA_QUEUE_PREFIX": prefix,
        # A short hard limit gives a short visibility timeout (2x): the killed batch comes back soon.
        "CELERY_TASK_TIME_LIMIT": "15",
        "CELERY_RESTORE_INTERVAL": "1",
        # Each image stays "running" at least 1 s, so the poll below reliably sees one running.
        "JOB_TEST_ITEM_DELAY_S": "1",
    }
    owner, project, _ = build_project(n_images=4)
    first = start_worker(extra_env=env, name="crash-a")
    try:
        job = services.start_job(project=project, user=owner)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = job.items.filter(status=ItemStatus.DONE).count()
            running = job.items.filter(status=ItemStatus.RUNNING).count()
            if done >= 1 and running >= 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the job never had a finished and a running image at once")
    finally:
        stop_worker(first, hard=True)  # SIGKILL: no ack, no cleanup, mid-batch
    assert PrelabelJob.objects.get(pk=job.pk).status == JobStatus.RUNNING

    second = start_worker(extra_env=env, name="crash-b")
    try:
        job = wait_for_job(job.pk, timeout=240)
    finally:
        stop_worker(second)
    assert job.status == JobStatus.DONE and job.processed == 4 and job.failed == 0, job.error
    for item in job.items.all():
        annotations = Annotation.objects.filter(image_id=item.image_id)
        assert annotations.count() == item.detections, "exactly one set of model annotations per image"
        assert set(annotations.values_list("job_id", flat=True)) <= {job.pk}
        assert item.attempts in (1, 2)
    assert job.items.filter(attempts=2).exists(), "the image in flight at the kill was processed again"
