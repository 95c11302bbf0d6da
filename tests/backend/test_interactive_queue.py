"""Box-segment and click-refine have a queue and a worker of their own: a reviewer's click is
answered while the gpu worker runs a job (or a training) for minutes. They waited behind it and
answered 503 "is the gpu worker running?" after 60 s."""
import time

import pytest
from django.conf import settings

from backend.jobs import interactive
from backend.jobs import services as job_services
from backend.jobs.models import PrelabelJob

from ..worker import start_worker, stop_worker
from .test_job_recovery import worker_queues
from .test_segment_proposal import project_with_image

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_click_is_answered_while_the_gpu_worker_is_busy(client_for, settings, tiny_models_config, monkeypatch):
    owner, project, image, _ = project_with_image(gallery=False)
    # Private queues: the session's shared worker (on every queue) ran the job in a second when it
    # got there first, so the job was never seen running (CI, stop 27).
    prefix = worker_queues(settings, "busy")
    env = {"RAZMETKA_ML_CONFIG": tiny_models_config, "RAZMETKA_QUEUE_PREFIX": prefix}
    busy = start_worker(queues=[settings.QUEUE_GPU], name="busy-gpu", extra_env={**env, "JOB_TEST_ITEM_DELAY_S": "30"})
    clicks = start_worker(queues=[settings.QUEUE_INTERACTIVE], name="interactive", extra_env=env)
    try:
        job = job_services.start_job(project=project, user=owner, images="all")
        deadline = time.monotonic() + 60
        while (status := PrelabelJob.objects.get(pk=job.pk).status) != "running":
            assert status == "queued", f"the busy worker's job is {status}"
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.2)
        monkeypatch.setattr(interactive, "SEGMENT_TIMEOUT_S", 20)  # the old route waited the job's 30 s out
        client = client_for(owner)
        base = f"/api/projects/{project.pk}/images/{image.pk}"
        segment = client.post(f"{base}/segment/", {"box": [4, 4, 40, 36]}, format="json")
        assert segment.status_code == 200, segment.content
        refine = client.post(f"{base}/refine/", {"points": [[20, 20]], "labels": [1]}, format="json")
        assert refine.status_code == 200, refine.content
        assert PrelabelJob.objects.get(pk=job.pk).status == "running", "answered while the job still ran"
    finally:
        stop_worker(busy, hard=True)
        stop_worker(clicks)
