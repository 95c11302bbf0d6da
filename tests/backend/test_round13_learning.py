"""Black-box round 13 (learning): what a training that cannot fit its time says, and the advice
given when a head training's worker dies."""
from __future__ import annotations

import pytest

from backend.annotations.models import ReviewState
from backend.learning.models import TrainingRun

from .factories import make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


def test_a_training_that_cannot_fit_its_time_says_so_plainly(settings, tiny_models_config):
    """"ValueError: ... would take about 25 min, longer than the worker's limit of 29 min": 25 is
    not longer than 29 (a fifth is kept for saving and scoring), and a class name led the message."""
    from backend.learning.tasks import _training

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0.01
    owner = make_user("own")
    project = make_project(owner)
    cat = make_class(project, "cat")
    for seed in range(4):
        image = make_image(project, seed=seed)
        ann = make_model_annotation(image, cat)
        type(ann).objects.filter(pk=ann.pk).update(class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED)
    run = TrainingRun.objects.create(project=project, kind="maskrcnn", created_by=owner, params={
        "arch": "tiny", "steps": 400, "min_size": 64, "max_size": 96, "batch_size": 1, "rois_per_image": 16})
    _training(run.pk)
    run.refresh_from_db()
    assert run.state == "failed", run.error
    assert run.error.startswith("At ") and "does not fit the worker's limit" in run.error, run.error
    assert "a fifth of the budget" in run.error and "Train with at most" in run.error, run.error


def test_a_head_training_whose_worker_died_is_told_what_a_head_takes():
    """The advice named min_size, max_size and RoIs, which a head's training refuses (400)."""
    from backend.core import liveness

    owner = make_user("own")
    project = make_project(owner)
    head = TrainingRun.objects.create(project=project, kind="head", created_by=owner, state="running")
    maskrcnn = TrainingRun.objects.create(project=project, kind="maskrcnn", created_by=owner, state="running")
    kind = next(k for k in liveness.KINDS if k.model == "learning.TrainingRun")
    assert liveness._fail(kind, head.pk) and liveness._fail(kind, maskrcnn.pk)
    head.refresh_from_db()
    maskrcnn.refresh_from_db()
    assert "fewer epochs or a smaller hidden layer" in head.error and "min_size" not in head.error, head.error
    assert "min_size" in maskrcnn.error, maskrcnn.error


def test_a_second_new_images_job_does_not_take_the_images_a_running_one_waits_on(client_for):
    """Four starts of `images: "new"` (at once or one after another) each took all 60 new images,
    and the models ran four times over them."""
    from backend.jobs.models import PrelabelJob

    owner = make_user("own")
    project = make_project(owner)
    first_images = [make_image(project, seed=s) for s in (1, 2)]
    url = f"/api/projects/{project.pk}/jobs/"
    first = client_for(owner).post(url, {"images": "new"}, format="json")
    assert first.status_code == 201 and first.json()["total"] == 2, first.content
    again = client_for(owner).post(url, {"images": "new"}, format="json")
    assert again.status_code == 400, again.content
    assert "already waiting in a running pre-annotation job (#1)" in again.json()["detail"], again.content
    later = make_image(project, seed=3)
    second = client_for(owner).post(url, {"images": "new"}, format="json")
    assert second.status_code == 201 and second.json()["total"] == 1, second.content
    assert list(PrelabelJob.objects.get(pk=second.json()["id"]).items.values_list("image_id", flat=True)) == [later.pk]
    # "all" and explicit ids run them again on purpose.
    everything = client_for(owner).post(url, {"images": "all"}, format="json")
    assert everything.status_code == 201 and everything.json()["total"] == 3, everything.content
    assert client_for(owner).post(url, {"images": [first_images[0].pk]}, format="json").status_code == 201


def test_an_all_images_job_on_an_empty_project_says_it_has_no_images(client_for):
    owner = make_user("own")
    project = make_project(owner)
    answer = client_for(owner).post(f"/api/projects/{project.pk}/jobs/", {"images": "all"}, format="json")
    assert answer.status_code == 400 and "has no images yet" in answer.json()["detail"], answer.content


def test_a_redis_outage_is_one_log_line_a_beat_not_a_traceback(monkeypatch, caplog, tmp_path):
    """While Redis was frozen, serve.log filled with a traceback per live event and per liveness
    beat (every few seconds per running task)."""
    import logging

    import redis

    from backend.core import liveness, redis_client

    dead = redis.Redis(unix_socket_path=str(tmp_path / "no-redis.sock"), socket_connect_timeout=0.2)
    monkeypatch.setattr(redis_client, "_client", dead)
    with caplog.at_level(logging.WARNING, logger="razmetka.liveness"):
        liveness._Beat("razmetka:alive:test:x:1")._set()
    (record,) = [r for r in caplog.records if "could not mark" in r.getMessage()]
    assert record.exc_info is None and "ConnectionError" in record.getMessage(), record.getMessage()


def test_a_conflict_names_a_mask_rcnn_training_as_such(client_for):
    """"Maskrcnn training #6 is already running" (str.capitalize of the kind)."""
    owner = make_user("own")
    project = make_project(owner)
    run = TrainingRun.objects.create(project=project, kind="maskrcnn", created_by=owner, state="done")
    answer = client_for(owner).post(f"/api/projects/{project.pk}/trainings/{run.pk}/cancel/", {}, format="json")
    assert answer.status_code == 409, answer.content
    assert answer.json()["detail"].startswith(f"Mask R-CNN training #{run.pk} is already done"), answer.content
