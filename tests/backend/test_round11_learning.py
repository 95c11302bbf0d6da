"""Round 11 (jobs and the learning loop)."""
from __future__ import annotations

import pytest

from backend.annotations.models import ReviewState
from backend.learning.models import ModelVersion
from backend.projects.models import Project

from .factories import make_class, make_image, make_model_annotation, make_project, make_user

pytestmark = pytest.mark.django_db


def test_a_maskrcnn_project_whose_versions_are_all_retired_does_not_run_the_servers_model(client_for):
    """Deactivating the project's Mask R-CNN left its engine `maskrcnn`; its jobs and evaluations
    then ran the server's configured checkpoint, a model of other classes (32 "pliers" from a
    project trained on cat/dog), and nothing said so."""
    owner = make_user("own")
    project = make_project(owner)
    Project.objects.filter(pk=project.pk).update(engine="maskrcnn")
    image = make_image(project)
    ann = make_model_annotation(image, make_class(project, "cat"))
    type(ann).objects.filter(pk=ann.pk).update(class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED)
    client = client_for(owner)
    base = f"/api/projects/{project.pk}"
    # Never trained one: the server's Mask R-CNN is the project's choice.
    assert client.post(f"{base}/jobs/", {"images": "all"}, format="json").status_code == 201
    ModelVersion.objects.create(project=project, kind="maskrcnn", number=1, file="models/m1.zip", state="retired")
    job = client.post(f"{base}/jobs/", {"images": "all"}, format="json")
    assert job.status_code == 400 and "No Mask R-CNN of this project is active" in job.json()["detail"], job.content
    assert job.json()["field"] == "engine"
    evaluation = client.post(f"{base}/evaluations/", {}, format="json")
    assert evaluation.status_code == 400 and "version #1 was retired" in evaluation.json()["detail"], evaluation.content


def test_a_boxes_job_on_images_without_boxes_is_refused_at_start(client_for):
    """It ended "done 3/3" with 0 objects and no word of why."""
    owner = make_user("own")
    project = make_project(owner)
    bare = [make_image(project, seed=s).pk for s in (1, 2)]
    client = client_for(owner)
    url = f"/api/projects/{project.pk}/jobs/"
    answer = client.post(url, {"images": bare, "kind": "boxes"}, format="json")
    assert answer.status_code == 400 and "unreviewed box" in answer.json()["detail"], answer.content
    boxed = make_image(project, seed=3)
    make_model_annotation(boxed)
    assert client.post(url, {"images": [*bare, boxed.pk], "kind": "boxes"}, format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_database_restart_during_a_training_does_not_start_it_over(settings, tiny_models_config, caplog):
    """A 4 s PostgreSQL restart failed the training's next progress note, and the whole task ran
    again from step 0 (minutes lost; once it then failed its time check). The worker's connection
    is cut mid-training here as a restart cuts it: the training goes on and registers its model."""
    import threading
    import time

    from django.db import connection, connections

    from backend.learning import training
    from backend.learning.models import TrainingRun

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner = make_user("own")
    project = make_project(owner)
    for seed, name in ((1, "cat"), (2, "dog"), (3, "cat")):
        ann = make_model_annotation(make_image(project, width=96, height=72, seed=seed), make_class(project, name)
                                    if not project.classes.filter(name=name).exists() else project.classes.get(name=name))
        type(ann).objects.filter(pk=ann.pk).update(class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED)
    run = TrainingRun.objects.create(project=project, kind="maskrcnn", created_by=owner, state="running", params={
        "arch": "tiny", "steps": 40, "min_size": 64, "max_size": 96, "batch_size": 1, "rois_per_image": 16})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        worker_pid = cursor.fetchone()[0]
    cut = []

    def restart_midway():
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                progress = TrainingRun.objects.filter(pk=run.pk).values_list("progress", flat=True).get()
                if progress and progress > 0.05:
                    with connections["default"].cursor() as cursor:
                        cursor.execute("SELECT pg_terminate_backend(%s)", [worker_pid])
                        cut.append(cursor.fetchone()[0])
                    return
                time.sleep(0.05)
        finally:
            connections.close_all()

    thread = threading.Thread(target=restart_midway)
    thread.start()
    with caplog.at_level("WARNING"):
        training.train_maskrcnn_run(run)
    thread.join(30)
    assert cut == [True], "the connection was not cut mid-training"
    run.refresh_from_db()
    assert run.state == "done" and run.model_version_id, run.error
    # The note waits for the database (core/task_retry.riding_out_outages), or is skipped.
    assert "the database is unreachable, trying again" in caplog.text or "progress not recorded" in caplog.text
    ids = dict(project.classes.values_list("name", "pk"))
    assert run.model_version.metrics["class_ids"] == ids  # the classes by id, which a rename keeps


def test_a_head_with_nothing_to_hold_out_is_refused_at_start(client_for, settings, tiny_models_config):
    """One approved object per class: the head ended "done" with heldout_top1 null, measured on
    nothing, and could be activated as any other candidate."""
    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner = make_user("own")
    project = make_project(owner)
    cat, dog = make_class(project, "cat"), make_class(project, "dog")
    for seed, label in ((1, cat), (2, dog)):
        ann = make_model_annotation(make_image(project, seed=seed), label)
        type(ann).objects.filter(pk=ann.pk).update(class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED)
    url = f"/api/projects/{project.pk}/trainings/"
    answer = client_for(owner).post(url, {"kind": "head"}, format="json")
    assert answer.status_code == 400 and "held out" in answer.json()["detail"], answer.content
    ann = make_model_annotation(make_image(project, seed=3), cat)
    type(ann).objects.filter(pk=ann.pk).update(class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED)
    assert client_for(owner).post(url, {"kind": "head"}, format="json").status_code == 201


def test_a_maskrcnn_versions_classes_are_its_own_after_a_rename(tmp_path, settings, tiny_models_config):
    """Evaluated after `cat` was renamed, a version's `cat` predictions became "unknown" and left
    the counts in silence: the checkpoint names classes, the project had moved on."""
    import io
    import zipfile

    from backend.learning.evaluating import MaskRCNNEngine
    from backend.learning.models import TrainingRun
    from backend.learning.services import register_version
    from ml.maskrcnn_model import build_model, save_checkpoint

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner = make_user("own")
    project = make_project(owner)
    cat, dog = make_class(project, "cat"), make_class(project, "dog")
    spec = {"arch": "tiny", "class_names": ["cat", "dog"], "min_size": 64, "max_size": 96}
    folder = save_checkpoint(build_model(spec), spec, tmp_path / "ckpt")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)
    run = TrainingRun.objects.create(project=project, kind="maskrcnn", created_by=owner, state="running")
    version = register_version(run=run, file_name="m.zip", content=buf.getvalue(),
                               metrics={"class_names": ["cat", "dog"], "class_ids": {"cat": cat.pk, "dog": dog.pk}})
    cat.name = "cat-renamed"
    cat.save()
    engine = MaskRCNNEngine(project, version)
    assert engine.label_of("cat") == str(cat.pk) and engine.label_of("dog") == str(dog.pk)
    assert engine.label_of("zebra") == "unknown"


def test_a_rescore_of_a_project_deleted_meanwhile_ends_quietly():
    """A re-scoring queued before its project was deleted raised Project.DoesNotExist in the worker
    (a traceback in the log for every such race)."""
    from backend.jobs import tasks

    owner = make_user("own")
    project = make_project(owner)
    project_id = project.pk
    project.delete()
    assert tasks._rescore(project_id) == 0
    assert tasks._rescore(project_id, after_embedding=True) == 0


def test_a_persons_pending_drawing_is_not_a_box_to_segment(client_for):
    """Black-box round 15: a boxes job took an annotator's pending hand-drawn triangle as a box
    and added a model object over it; a person's shape is theirs, not a prompt."""
    from backend.annotations import selectors
    from backend.annotations.models import Source

    owner = make_user("own")
    project = make_project(owner)
    drawn = make_image(project, seed=4)
    mine = make_model_annotation(drawn, make_class(project, "tri"))
    type(mine).objects.filter(pk=mine.pk).update(source=Source.HUMAN, created_by=owner)
    answer = client_for(owner).post(f"/api/projects/{project.pk}/jobs/", {"images": [drawn.pk], "kind": "boxes"},
                                    format="json")
    assert answer.status_code == 400 and "unreviewed box" in answer.json()["detail"], answer.content
    assert selectors.unreviewed_boxes(drawn.pk) == []
    imported = make_model_annotation(drawn)  # an import's (or a model's) pending box is still one
    assert [row[0] for row in selectors.unreviewed_boxes(drawn.pk)] == [imported.bbox]


def test_a_job_start_says_which_of_its_images_someone_has_open(client_for):
    """Black-box round 15: a re-run replaced the proposals of an image a reviewer had open, and the
    admin starting it heard nothing of it."""
    from datetime import timedelta

    from django.utils import timezone

    from backend.images.models import Image

    from .factories import add_member

    owner, rita = make_user("own"), make_user("rita")
    project = make_project(owner)
    add_member(project, rita, "reviewer")
    held, free, mine = (make_image(project, seed=s) for s in (1, 2, 3))
    soon = timezone.now() + timedelta(minutes=5)
    Image.objects.filter(pk=held.pk).update(claimed_by=rita, claim_expires_at=soon)
    Image.objects.filter(pk=mine.pk).update(claimed_by=owner, claim_expires_at=soon)
    started = client_for(owner).post(f"/api/projects/{project.pk}/jobs/", {"images": "all"}, format="json")
    assert started.status_code == 201, started.content
    assert started.json()["held_by_others"] == {"count": 1, "people": ["rita"]}
