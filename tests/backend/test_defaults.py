"""Defaults that do what they say: one object per class per image unless a project turns it off,
and re-scoring after a gallery change touches only what the gallery classified."""
import time

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations.models import Annotation, AnnotationEvent, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.gallery.models import GalleryEmbedding, GalleryImage
from backend.jobs.gallery_index import classification
from backend.jobs.rescoring import rescore_project
from backend.jobs.services import classes_by_id
from backend.projects.models import Project
from ml.matcher import Matcher

from .factories import make_class, make_image, make_project, make_user, rect_rle, synthetic_png

VERSION = "test-embedder-v1"


def unit(*values) -> list[float]:
    v = np.asarray(values, np.float32)
    return (v / np.linalg.norm(v)).tolist()


def add_exemplar(label_class, vector, seed: int) -> GalleryImage:
    """A gallery row with its stored vector, as ensure_exemplar_embeddings leaves it."""
    exemplar = GalleryImage.objects.create(
        project=label_class.project, label_class=label_class, file=f"gallery/{seed}.png", original_name=f"{seed}.png",
        content_type="image/png", sha256=f"sha-{seed}", width=8, height=8,
    )
    GalleryEmbedding.objects.create(gallery_image=exemplar, embedder_version=VERSION, vector=vector)
    return exemplar


def model_annotation(image, vector, match=None, **fields) -> Annotation:
    """A pending model annotation with a stored crop embedding; with `match` (an ml MatchResult),
    classified the way a job stores it (gallery_index.classification)."""
    rle = rect_rle(image.height, image.width, 4, 4, 20, 16)
    bbox, area = mask_geometry(rle)
    values = {"label_class": None, "class_score": None, "candidates": []}
    if match is not None:
        values = classification(match, classes_by_id(image.project_id))
    return Annotation.objects.create(
        project=image.project, image=image, mask_rle=rle, bbox=bbox, area=area, source=Source.MODEL,
        class_review=ReviewState.PENDING, mask_review=ReviewState.PENDING, embedding=vector,
        embedder_version=VERSION, **{**values, **fields},
    )


@pytest.fixture
def project(admin_user):
    return make_project(admin_user)


@pytest.fixture
def tools(project):
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    add_exemplar(hammer, unit(1, 0, 0, 0), 1)
    add_exemplar(wrench, unit(0, 1, 0, 0), 2)
    return hammer, wrench


# --------------------------------------------------------------------------- unique classes


@pytest.mark.django_db
def test_a_new_project_matches_one_object_per_class_and_the_switch_is_writable(admin_user, client_for):
    client = client_for(admin_user)
    response = client.post("/api/projects/", {"name": "Bench"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["unique_classes_per_image"] is True
    assert Project.objects.get(pk=body["id"]).unique_classes_per_image is True
    response = client.patch(f"/api/projects/{body['id']}/", {"unique_classes_per_image": False, "version": body["version"]},
                            format="json")
    assert response.status_code == 200, response.content
    assert response.json()["unique_classes_per_image"] is False
    assert Project.objects.get(pk=body["id"]).unique_classes_per_image is False
    stale = client.patch(f"/api/projects/{body['id']}/", {"unique_classes_per_image": True, "version": body["version"]},
                         format="json")
    assert stale.status_code == 409


@pytest.mark.django_db
def test_two_objects_of_one_class_on_an_image_keep_only_the_best_as_that_class(project, tools):
    hammer, wrench = tools
    image = make_image(project)
    # Both look most like the hammer; the first one more so.
    best = model_annotation(image, unit(0.95, 0.05, 0, 0))
    second = model_annotation(image, unit(0.7, 0.3, 0, 0.1))
    assert rescore_project(project_id=project.pk) == 2
    best.refresh_from_db()
    second.refresh_from_db()
    assert best.label_class_id == hammer.pk
    assert second.label_class_id is None, "a second hammer on one image: unique classes per image is off"
    assert second.candidates[0]["class_id"] == hammer.pk  # still offered as the top candidate


# --------------------------------------------------------------------------- re-scoring


@pytest.mark.django_db
def test_rescoring_leaves_probability_classified_objects_alone(project, tools):
    hammer, wrench = tools
    image = make_image(project)
    # classify_with = "probs": the classifier said wrench, whatever the gallery would say.
    by_probs = Matcher(unknown_threshold=0.5, top_k=5).match_probs(np.array([[0.1, 0.9]]), ["hammer", "wrench"])[0]
    probs_annotation = model_annotation(image, unit(1, 0, 0, 0), by_probs)
    assert probs_annotation.label_class_id == wrench.pk
    assert all(c["exemplar_id"] is None for c in probs_annotation.candidates)
    before = (probs_annotation.version, probs_annotation.label_class_id, probs_annotation.class_score,
              probs_annotation.candidates)
    # A gallery-classified object on another image is re-scored in the same pass.
    other = make_image(project, seed=1)
    by_gallery = model_annotation(other, unit(1, 0, 0, 0), label_class=wrench,
                                    candidates=[{"class_id": wrench.pk, "name": "wrench", "score": 0.9, "exemplar_id": 2}])
    # A proposal made while the gallery was empty has no candidates: it is re-scored too.
    unmatched = model_annotation(make_image(project, seed=2), unit(0, 1, 0, 0), label_class=None, candidates=[])

    assert rescore_project(project_id=project.pk) == 2
    probs_annotation.refresh_from_db()
    after = (probs_annotation.version, probs_annotation.label_class_id, probs_annotation.class_score,
             probs_annotation.candidates)
    assert after == before, "re-scoring re-labelled a classifier's probability result by feature matching"
    assert not AnnotationEvent.objects.filter(annotation_id=probs_annotation.pk, action="rescored").exists()
    by_gallery.refresh_from_db()
    unmatched.refresh_from_db()
    assert by_gallery.label_class_id == hammer.pk and by_gallery.candidates[0]["exemplar_id"] is not None
    assert unmatched.label_class_id == wrench.pk


@pytest.mark.django_db
def test_an_empty_gallery_leaves_pending_classes_as_they_are(project, tools, client_for, admin_user):
    hammer, wrench = tools
    image = make_image(project)
    annotation = model_annotation(image, unit(1, 0, 0, 0))
    assert rescore_project(project_id=project.pk) == 1
    annotation.refresh_from_db()
    assert annotation.label_class_id == hammer.pk
    state = (annotation.version, annotation.label_class_id, annotation.class_score, annotation.candidates)

    GalleryImage.objects.filter(project=project).delete()  # every exemplar removed
    assert rescore_project(project_id=project.pk) == 0
    annotation.refresh_from_db()
    assert (annotation.version, annotation.label_class_id, annotation.class_score, annotation.candidates) == state
    # Same when the gallery is emptied by deactivating every class.
    add_exemplar(hammer, unit(1, 0, 0, 0), 3)
    for label in (hammer, wrench):
        label.refresh_from_db()
        response = client_for(admin_user).patch(f"/api/projects/{project.pk}/classes/{label.pk}/",
                                                {"active": False, "version": label.version}, format="json")
        assert response.status_code == 200, response.content
    assert rescore_project(project_id=project.pk) == 0
    annotation.refresh_from_db()
    assert annotation.label_class_id == hammer.pk


# --------------------------------------------------------------------------- through a real job


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_in_a_default_project_gives_each_class_at_most_once_per_image(celery_worker):
    from backend.gallery.services import upload_exemplars
    from backend.images.services import upload_images
    from backend.jobs import services
    from backend.jobs.models import JobStatus, PrelabelJob

    owner = make_user(f"owner{time.monotonic_ns()}")
    # Random-weight models score everything low: zero thresholds let every proposal through,
    # so without the default every proposal would take its best class.
    project = make_project(owner, box_threshold=0.0, text_threshold=0.0, unknown_threshold=0.0)
    assert project.unique_classes_per_image is True
    for name, seeds in (("hammer", (101, 102)), ("wrench", (103,))):
        label = make_class(project, name)
        upload_exemplars(project=project, user=owner, files=[SimpleUploadedFile(f"{name}{s}.png", synthetic_png(s)) for s in seeds],
                         class_id=label.pk)
    upload_images(project=project, user=owner, files=[SimpleUploadedFile(f"img{i}.png", synthetic_png(i)) for i in range(3)])
    job = services.start_job(project=project, user=owner)
    assert job.settings_snapshot["unique_classes_per_image"] is True
    deadline = time.monotonic() + 180
    while PrelabelJob.objects.get(pk=job.pk).status not in (JobStatus.DONE, JobStatus.FAILED):
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.2)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    per_image: dict[int, list[Annotation]] = {}
    for annotation in Annotation.objects.filter(project=project):
        per_image.setdefault(annotation.image_id, []).append(annotation)
    assert any(len(found) > 2 for found in per_image.values()), "need more proposals than classes on an image"
    for found in per_image.values():
        labelled = [a.label_class_id for a in found if a.label_class_id is not None]
        assert len(labelled) == len(set(labelled)), f"a class given twice on one image: {labelled}"
        assert all(a.candidates for a in found)  # the ones left unknown still show their candidates
