"""Issue 15 on a real Celery worker: evaluation runs the real (tiny) pipeline against approved
objects; training registers candidates that only an admin activates."""
import time

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations import services as annotation_services
from backend.annotations.models import Annotation
from backend.gallery.services import upload_exemplars
from backend.images.models import Image
from backend.jobs import services as job_services
from backend.learning.models import EvaluationRun, ModelVersion, TrainingRun
from backend.projects.models import Role

from .factories import add_member, make_class, make_project, make_user, synthetic_png
from .test_jobs import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def web_knows_the_models(settings, tiny_models_config):
    """The web side refuses to start an evaluation or a training when no models are configured;
    here they are the tiny ones the test worker loads."""
    settings.RAZMETKA_ML_CONFIG = tiny_models_config


def report(name: str, run) -> None:
    """RAZMETKA_LEARNING_REPORT=dir writes a finished run's row (docs/learning.md's measured table)."""
    import json
    import os
    from pathlib import Path

    if os.environ.get("RAZMETKA_LEARNING_REPORT"):
        out = Path(os.environ["RAZMETKA_LEARNING_REPORT"])
        out.mkdir(parents=True, exist_ok=True)
        row = {"engine": run.engine, "weights": run.weights, "device": run.device, "split": run.split, "metrics": run.metrics}
        (out / f"{name}.json").write_text(json.dumps(row, indent=1, default=str))


def wait_for(model, pk, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = model.objects.get(pk=pk)
        if run.state in ("done", "failed"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"{model.__name__} {pk} did not finish: {model.objects.get(pk=pk).state}")


def set_class(project, user, annotation_id, class_id):
    """An admin's class edit (accepted); the gallery upload's re-scoring task may bump the
    annotation's version meanwhile, so a conflict is retried on the fresh version."""
    from backend.core.errors import VersionConflict

    for _ in range(20):
        current = Annotation.objects.get(pk=annotation_id)
        try:
            return annotation_services.update_annotation(project=project, annotation_id=annotation_id, user=user,
                                                         version=current.version, class_id=class_id)
        except VersionConflict:
            time.sleep(0.2)
    raise AssertionError(f"annotation {annotation_id} kept changing")


def reviewed_project(n_reviewed=4, n_pending=2):
    """A project whose first images were pre-annotated by the tiny pipeline and reviewed by an
    admin (classes alternated so both classes have approved objects), the rest left pending."""
    from backend.images.services import upload_images

    owner = make_user(f"owner{time.monotonic_ns()}")
    project = make_project(owner, box_threshold=0.0, text_threshold=0.0, unknown_threshold=0.0)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    for label, seeds in ((hammer, (101, 102)), (wrench, (103, 104))):
        files = [SimpleUploadedFile(f"{label.name}{s}.png", synthetic_png(s)) for s in seeds]
        upload_exemplars(project=project, user=owner, files=files, class_id=label.pk)
    files = [SimpleUploadedFile(f"img{i}.png", synthetic_png(i)) for i in range(n_reviewed + n_pending)]
    images = upload_images(project=project, user=owner, files=files).created
    assert wait_for_job(job_services.start_job(project=project, user=owner, images="all").pk).status == "done"
    for image in images[:n_reviewed]:
        for i, pk in enumerate(Annotation.objects.filter(image=image).order_by("id").values_list("pk", flat=True)):
            set_class(project, owner, pk, (hammer if i % 2 else wrench).pk)
        annotation_services.accept_all(project=project, image_id=image.pk, user=owner)
    return owner, project, images


def test_evaluation_scores_the_engine_against_approved_objects(celery_worker, client_for):
    owner, project, images = reviewed_project()
    viewer = make_user(f"viewer{time.monotonic_ns()}")
    add_member(project, viewer, Role.VIEWER)
    url = f"/api/projects/{project.pk}/evaluations/"
    assert client_for(viewer).post(url, {}, format="json").status_code == 403
    response = client_for(owner).post(url, {}, format="json")
    assert response.status_code == 201, response.content
    run = wait_for(EvaluationRun, response.json()["id"])
    assert run.state == "done", run.error
    m = run.metrics
    assert run.total == run.processed == 4 and m["images"] == 4 and m["gt_objects"] > 0
    # The engine re-predicts the same images with the same tiny models: masks match the approved ones.
    assert m["ap"]["mask"]["agnostic"]["ap50"] > 0.5, m["ap"]
    assert 0.0 <= m["class_accuracy"] <= 1.0 and m["matched"] > 0
    assert {c["name"] for c in m["per_class"]} >= {"hammer", "wrench"}
    assert set(m["auto_accept"]) >= {"threshold", "fraction"} and m["seconds_per_image"] > 0
    assert run.engine == "gdino-sam2" and run.device and run.weights and run.gallery_version
    report("gdino-sam2", run)
    # Members read it.
    listed = client_for(viewer).get(url).json()["results"]
    assert listed[0]["id"] == run.pk and listed[0]["metrics"]["images"] == 4


def test_images_deleted_during_an_evaluation_are_left_out_and_counted(celery_worker, settings, monkeypatch):
    """An image deleted while an evaluation ran failed it with KeyError (or, deleted after its
    batch, left "8 of 9" for ever). Now it is left out, named, and the counts agree."""
    from backend.images.services import delete_image
    from backend.learning import evaluating

    owner, project, images = reviewed_project(n_reviewed=4, n_pending=0)
    a, b, c, d = (im.pk for im in images)
    settings.PRELABEL_CHUNK_SIZE = 2  # batches [a, b] and [c, d]
    real_read, calls = evaluating.read_rgb, []

    def read_while_someone_deletes(name):
        calls.append(name)
        victim = {1: d, 3: a}.get(len(calls))  # d before its batch is read, a after it was scored
        if victim is not None:
            delete_image(project=project, image_id=victim, version=Image.objects.get(pk=victim).api_version)
        return real_read(name)

    monkeypatch.setattr(evaluating, "read_rgb", read_while_someone_deletes)
    run = EvaluationRun.objects.create(project=project, created_by=owner, engine="gdino-sam2")
    evaluating.run(run)
    run.refresh_from_db()
    assert run.state == "done", run.error
    assert (run.total, run.processed, run.metrics["images"]) == (2, 2, 2)
    assert run.metrics["image_ids"] == [b, c] and run.metrics["deleted_image_ids"] == [a, d]


def test_evaluation_errors_are_clear(client_for, settings):
    owner = make_user("owner-empty")
    project = make_project(owner)
    response = client_for(owner).post(f"/api/projects/{project.pk}/evaluations/", {}, format="json")
    assert response.status_code == 400 and "approved" in response.json()["detail"]
    settings.RAZMETKA_ML_CONFIG = ""
    response = client_for(owner).post(f"/api/projects/{project.pk}/evaluations/", {}, format="json")
    assert response.status_code == 400 and "RAZMETKA_ML_CONFIG" in response.json()["detail"]
    response = client_for(owner).post(f"/api/projects/{project.pk}/evaluations/", {"engine": "sam3"}, format="json")
    assert response.status_code == 400 and "not supported" in response.json()["detail"]
    assert not EvaluationRun.objects.filter(project=project).exists()


def test_trained_head_is_a_candidate_until_an_admin_activates_it(celery_worker, client_for):
    from backend.jobs.gallery_index import load_gallery, project_matcher
    from backend.learning.selectors import active_ids, active_transform, head_transform, transform_for

    owner, project, images = reviewed_project()
    reviewer = make_user(f"rev{time.monotonic_ns()}")
    add_member(project, reviewer, Role.REVIEWER)
    base = f"/api/projects/{project.pk}"
    assert client_for(reviewer).post(f"{base}/trainings/", {"kind": "head"}, format="json").status_code == 403
    response = client_for(owner).post(f"{base}/trainings/", {"kind": "head", "params": {"epochs": 40, "hidden": 32}},
                                      format="json")
    assert response.status_code == 201, response.content
    run = wait_for(TrainingRun, response.json()["id"])
    assert run.state == "done", run.error
    version = ModelVersion.objects.get(pk=run.model_version_id)
    assert version.kind == "head" and version.state == "candidate" and version.number == 1
    assert version.metrics["heldout_top1"] is not None and version.embedder_version
    assert active_transform(project.pk) is None  # trained is not active

    pending = list(Annotation.objects.filter(image__in=images[4:]).order_by("id"))
    assert pending and all(a.class_review == "pending" for a in pending)
    before = {a.pk: a.class_score for a in pending}

    url = f"{base}/models/{version.pk}/activate/"
    assert client_for(reviewer).post(url, {"version": version.version}, format="json").status_code == 403
    stale = client_for(owner).post(url, {"version": version.version + 5}, format="json")
    assert stale.status_code == 409
    assert ModelVersion.objects.get(pk=version.pk).state == "candidate"
    response = client_for(owner).post(url, {"version": version.version}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "active" and response.json()["promoted_by"] == owner.username

    head = active_transform(project.pk)
    assert head is not None and head.embedder_version == version.embedder_version
    assert active_ids(project.pk) == {"head": version.pk} and head_transform(version.pk) is head
    assert transform_for(project.pk, version.embedder_version) is head and transform_for(project.pk, "other") is None
    # The matcher with the active head scores the stored embeddings differently: no model pass.
    from django.db import transaction

    with transaction.atomic():
        gallery = load_gallery(project_id=project.pk, embedder_version=version.embedder_version)
    emb = np.stack([np.asarray(a.embedding, np.float32) for a in pending[:3]])
    plain = project_matcher(project)
    if getattr(plain, "transform", None) is not None:
        plain.transform = None
    with_head = project_matcher(project)
    with_head.transform = head
    assert not np.allclose([m.score for m in plain.match(emb, gallery)], [m.score for m in with_head.match(emb, gallery)])

    if getattr(project_matcher(project), "transform", None) is not None:
        # jobs.gallery_index.project_matcher applies active_transform: activation re-scored the
        # pending objects through the real re-scoring task.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = {a.pk: a.class_score for a in Annotation.objects.filter(pk__in=before)}
            if now != before:
                break
            time.sleep(0.3)
        assert now != before, "activating the head did not re-score pending objects"

    # Deactivating retires it; a second training makes #2, again only a candidate.
    current = ModelVersion.objects.get(pk=version.pk)
    response = client_for(owner).post(f"{base}/models/{version.pk}/deactivate/", {"version": current.version}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "retired"
    assert active_transform(project.pk) is None
    # Deactivation re-scores too: without the head the scores are the plain matcher's again. Waiting
    # for it also keeps the worker's re-scoring out of the test database's teardown flush.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = {a.pk: a.class_score for a in Annotation.objects.filter(pk__in=before)}
        if all(abs(now[k] - before[k]) < 1e-5 for k in before):
            break
        time.sleep(0.3)
    assert all(abs(now[k] - before[k]) < 1e-5 for k in before), "deactivating the head did not restore the scores"


def test_maskrcnn_training_registers_a_candidate_and_scores_it(celery_worker, client_for, tiny_models_config):
    owner, project, images = reviewed_project(n_reviewed=4, n_pending=0)
    base = f"/api/projects/{project.pk}"
    # No trained version yet: the engine's configured checkpoint is scored, or, when the config
    # names none that exists, the run fails and says why.
    import os

    from ml.config import PipelineConfig

    checkpoint = PipelineConfig.from_file(tiny_models_config).maskrcnn.model  # what the worker runs with
    response = client_for(owner).post(f"{base}/evaluations/", {"engine": "maskrcnn"}, format="json")
    assert response.status_code == 201, response.content
    configured = wait_for(EvaluationRun, response.json()["id"])
    if os.path.isdir(checkpoint):
        assert configured.state == "done" and checkpoint in configured.weights, configured.error
    else:
        assert configured.state == "failed" and "checkpoint" in configured.error, configured.error
    params = {"arch": "tiny", "steps": 3, "min_size": 64, "max_size": 128, "batch_size": 1, "rois_per_image": 32}
    response = client_for(owner).post(f"{base}/trainings/", {"kind": "maskrcnn", "params": params}, format="json")
    assert response.status_code == 201, response.content
    run = wait_for(TrainingRun, response.json()["id"])
    assert run.state == "done", run.error
    version = ModelVersion.objects.get(pk=run.model_version_id)
    assert version.kind == "maskrcnn" and version.state == "candidate"
    assert version.metrics["heldout_image_ids"] and "ap" in version.metrics
    assert not ModelVersion.objects.filter(project=project, state="active").exists()
    response = client_for(owner).post(f"{base}/evaluations/", {"model_version": version.pk}, format="json")
    assert response.status_code == 201, response.content
    run = wait_for(EvaluationRun, response.json()["id"])
    assert run.state == "done", run.error
    assert run.engine == "maskrcnn" and run.split == "heldout"
    report("maskrcnn", run)
    assert run.metrics["images"] == len(version.metrics["heldout_image_ids"])
