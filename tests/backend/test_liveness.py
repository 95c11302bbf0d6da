"""A training, evaluation, export or import whose worker dies ends as failed with a message
(backend/core/liveness.py), instead of "running 0 %" for ever: a Mask R-CNN training ran the gpu
worker out of memory and the Models page showed it running for good."""
from __future__ import annotations

import time

import pytest

from backend.core import liveness
from backend.exchange.models import ExportJob
from backend.learning.models import TrainingRun

from ..worker import start_worker, stop_worker
from .factories import make_project, make_user
from .test_job_recovery import worker_queues
from .test_learning_jobs import reviewed_project

pytestmark = pytest.mark.django_db(transaction=True)


def sweep_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        liveness.sweep()
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("the sweeper never gave its verdict")


@pytest.mark.worker
def test_a_training_whose_worker_is_killed_ends_failed_and_can_be_started_again(
        celery_worker, client_for, settings, tiny_models_config, monkeypatch):
    settings.RAZMETKA_ML_CONFIG = tiny_models_config  # the web checks the workers have models
    owner, project, _ = reviewed_project(n_reviewed=2, n_pending=0)
    prefix = worker_queues(settings, "alive")  # a worker of this test's own, to kill
    # A beat a second, a key living 6 s: a loaded CI host once left a 2 s key unrenewed on both looks.
    monkeypatch.setattr(liveness, "TTL_S", 6)
    worker = start_worker(queues=[settings.QUEUE_GPU], name="alive", extra_env={
        "RAZMETKA_ML_CONFIG": tiny_models_config, "RAZMETKA_QUEUE_PREFIX": prefix, "RAZMETKA_ALIVE_TTL_S": "6",
        "CELERY_TASK_TIME_LIMIT": "360000"})  # room for the long training below (it stops early if it cannot fit)
    try:
        params = {"arch": "tiny", "steps": 100000, "min_size": 64, "max_size": 128, "batch_size": 1, "rois_per_image": 32}
        response = client_for(owner).post(f"/api/projects/{project.pk}/trainings/", {"kind": "maskrcnn", "params": params},
                                          format="json")
        assert response.status_code == 201, response.content
        run_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while TrainingRun.objects.get(pk=run_id).progress <= 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        liveness.sweep()
        time.sleep(7)
        assert liveness.sweep() == 0 and TrainingRun.objects.get(pk=run_id).state == "running", "a live worker's run"
    finally:
        stop_worker(worker, hard=True)  # as the kernel's OOM killer does: no cleanup, no ack
    sweep_until(lambda: TrainingRun.objects.get(pk=run_id).state == "failed", timeout=60.0)
    body = client_for(owner).get(f"/api/projects/{project.pk}/trainings/{run_id}/").json()
    assert body["state"] == "failed" and "stopped before it finished" in body["error"] and "min_size" in body["error"]
    again = client_for(owner).post(f"/api/projects/{project.pk}/trainings/", {"kind": "head"}, format="json")
    assert again.status_code == 201, again.content


def test_a_running_export_without_a_beat_fails_only_after_two_looks(settings, monkeypatch):
    """Two looks TTL_S apart: a Redis restart loses every key, and the next beat sets it again."""
    owner = make_user("owner")
    project = make_project(owner)
    monkeypatch.setattr(liveness, "TTL_S", 1)
    job = ExportJob.objects.create(project=project, created_by=owner, format="coco", status="running",
                                   started_at="2026-01-01T00:00:00Z")
    beating = ExportJob.objects.create(project=project, created_by=owner, format="coco", status="running",
                                       started_at="2026-01-01T00:00:00Z")
    kind = liveness._BY_TASK["exchange.run_export"]
    from backend.core.redis_client import shared

    shared().set(liveness._key(kind, beating.pk), 1, ex=60)
    try:
        assert liveness.sweep(now=100.0) == 0 and ExportJob.objects.get(pk=job.pk).status == "running"
        assert liveness.sweep(now=101.0) == 1
    finally:
        shared().delete(liveness._key(kind, beating.pk))
    failed = ExportJob.objects.get(pk=job.pk)
    assert failed.status == "failed" and "export fewer images" in failed.error and failed.finished_at
    assert ExportJob.objects.get(pk=beating.pk).status == "running"
