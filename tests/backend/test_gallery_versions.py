"""Gallery versions: every gallery change records an immutable set of exemplars, a job matches
against the version it pinned at start, and re-scoring matches against the newest one."""
import time

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from backend.annotations.models import Annotation, AnnotationEvent, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.gallery.models import GalleryEmbedding, GalleryImage, GalleryVersion
from backend.gallery.services import delete_exemplar, upload_exemplars
from backend.jobs.rescoring import rescore_project

from .factories import image_bytes, make_class, make_image, make_project, make_user, rect_rle, synthetic_png

VERSION = "test-embedder-v1"


def unit(*values) -> list[float]:
    v = np.asarray(values, np.float32)
    return (v / np.linalg.norm(v)).tolist()


def versions(project) -> list[tuple[int, list[int]]]:
    return list(GalleryVersion.objects.filter(project=project).order_by("number").values_list("number", "exemplar_ids"))


@pytest.mark.django_db
def test_adding_and_removing_exemplars_records_new_versions_and_keeps_old_ones(admin_user, client_for):
    project = make_project(admin_user)
    hammer = make_class(project, "hammer")
    api = client_for(admin_user)

    first = upload_exemplars(project=project, user=admin_user, class_id=hammer.pk,
                             files=[SimpleUploadedFile("a.png", image_bytes(9, 9, (1, 2, 3)))]).created[0]
    second = upload_exemplars(project=project, user=admin_user, class_id=hammer.pk,
                              files=[SimpleUploadedFile("b.png", image_bytes(9, 9, (4, 5, 6)))]).created[0]
    before = versions(project)
    assert [ids for _, ids in before] == [[first.pk], [first.pk, second.pk]]

    assert api.delete(f"/api/projects/{project.pk}/gallery/{first.pk}/").status_code == 204
    after = versions(project)
    assert after[:2] == before, "an older version keeps its exemplars"
    assert after[2][1] == [second.pk] and after[2][0] > before[1][0]
    project.refresh_from_db()
    assert project.gallery_version == after[2][0]

    # The API answers as before: the exemplar is gone from the gallery, a second delete is 404 ...
    listed = api.get(f"/api/projects/{project.pk}/gallery/").json()["results"]
    assert [e["id"] for e in listed] == [second.pk]
    assert api.delete(f"/api/projects/{project.pk}/gallery/{first.pk}/").status_code == 404
    classes = api.get(f"/api/projects/{project.pk}/classes/").json()["results"]
    assert [c["exemplar_count"] for c in classes] == [1]
    # ... while the old version's exemplar stays readable, and its bytes can be uploaded again.
    assert api.get(f"/api/projects/{project.pk}/gallery/{first.pk}/file/").status_code == 200
    shown = api.get(f"/api/projects/{project.pk}/gallery/versions/").json()["results"]
    assert [(v["number"], v["exemplar_ids"]) for v in shown] == after[::-1]
    again = upload_exemplars(project=project, user=admin_user, class_id=hammer.pk,
                             files=[SimpleUploadedFile("a.png", image_bytes(9, 9, (1, 2, 3)))])
    assert len(again.created) == 1 and not again.duplicates
    assert versions(project)[-1][1] == sorted([second.pk, again.created[0].pk])


def model_annotation(image) -> Annotation:
    """A pending model proposal made while the gallery was empty (no candidates yet)."""
    rle = rect_rle(image.height, image.width, 4, 4, 20, 16)
    bbox, area = mask_geometry(rle)
    return Annotation.objects.create(
        project=image.project, image=image, mask_rle=rle, bbox=bbox, area=area, source=Source.MODEL,
        class_review=ReviewState.PENDING, mask_review=ReviewState.PENDING, embedding=unit(0, 1, 0.2, 0),
        embedder_version=VERSION, label_class=None, class_score=None, candidates=[],
    )


def add_exemplar(label_class, vector, seed: int) -> GalleryImage:
    exemplar = GalleryImage.objects.create(
        project=label_class.project, label_class=label_class, file=f"gallery/{seed}.png", original_name=f"{seed}.png",
        content_type="image/png", sha256=f"sha-{seed}", width=8, height=8,
    )
    GalleryEmbedding.objects.create(gallery_image=exemplar, embedder_version=VERSION, vector=vector)
    return exemplar


@pytest.mark.django_db
def test_rescoring_matches_against_the_newest_version_and_records_it(admin_user):
    project = make_project(admin_user, unknown_threshold=0.0)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    add_exemplar(hammer, unit(1, 0, 0, 0), 1)
    close = add_exemplar(wrench, unit(0, 1, 0, 0), 2)
    far = add_exemplar(wrench, unit(0, 0.6, 0.8, 0), 3)
    annotation = model_annotation(make_image(project))

    assert rescore_project(project_id=project.pk) == 1
    annotation.refresh_from_db()
    assert (annotation.label_class_id, annotation.candidates[0]["exemplar_id"]) == (wrench.pk, close.pk)

    delete_exemplar(project=project, exemplar_id=close.pk)  # its row and vector stay, for older versions
    assert GalleryEmbedding.objects.filter(gallery_image=close).exists()
    assert rescore_project(project_id=project.pk) == 1
    annotation.refresh_from_db()
    assert (annotation.label_class_id, annotation.candidates[0]["exemplar_id"]) == (wrench.pk, far.pk)
    newest = GalleryVersion.objects.filter(project=project).order_by("-number").first()
    assert close.pk not in newest.exemplar_ids
    event = AnnotationEvent.objects.filter(annotation_id=annotation.pk, action="rescored").order_by("-id").first()
    assert event.after["gallery_version"] == newest.number


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_matches_against_the_gallery_version_it_pinned(celery_worker):
    from backend.images.services import upload_images
    from backend.jobs import services
    from backend.jobs.models import JobStatus, PrelabelJob

    owner = make_user(f"owner{time.monotonic_ns()}")
    # Random-weight models score everything low: zero thresholds let the detector's top-N through.
    project = make_project(owner, box_threshold=0.0, text_threshold=0.0, unknown_threshold=0.0)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    upload_exemplars(project=project, user=owner, class_id=hammer.pk,
                     files=[SimpleUploadedFile(f"h{s}.png", synthetic_png(s)) for s in (101, 102)])
    only_wrench = upload_exemplars(project=project, user=owner, class_id=wrench.pk,
                                   files=[SimpleUploadedFile("w103.png", synthetic_png(103))]).created[0]
    upload_images(project=project, user=owner, files=[SimpleUploadedFile(f"img{i}.png", synthetic_png(i)) for i in range(2)])

    # The batches are sent when this block commits: the worker only ever sees the gallery without
    # the wrench exemplar, yet the job pinned the version that still had it.
    with transaction.atomic():
        job = services.start_job(project=project, user=owner)
        delete_exemplar(project=project, exemplar_id=only_wrench.pk)
    pinned = GalleryVersion.objects.get(pk=job.settings_snapshot["gallery_version_id"])
    assert only_wrench.pk in pinned.exemplar_ids and job.settings_snapshot["gallery_version"] == pinned.number

    deadline = time.monotonic() + 180
    while PrelabelJob.objects.get(pk=job.pk).status not in (JobStatus.DONE, JobStatus.FAILED):
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.2)
    assert PrelabelJob.objects.get(pk=job.pk).status == JobStatus.DONE
    # What the job wrote (its "created" events; a later re-scoring may move pending objects on).
    created = list(AnnotationEvent.objects.filter(project=project, action="created").values_list("after", flat=True))
    assert created
    assert all({"hammer", "wrench"} == {c["name"] for c in after["candidates"]} for after in created)


@pytest.mark.django_db
def test_a_rescore_computed_against_an_older_gallery_writes_nothing(admin_user):
    """Black-box round 13: two re-scores of a project overlapped on the cpu worker's two processes
    and the older one (gallery 28) wrote last: 50 objects kept a deactivated class at gallery 56."""
    from backend.gallery.versions import current_version
    from backend.jobs.gallery_index import load_gallery, project_matcher
    from backend.jobs.rescoring import _rescore_images
    from backend.jobs.services import classes_by_id

    project = make_project(admin_user, unknown_threshold=0.0)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    add_exemplar(hammer, unit(1, 0, 0, 0), 1)
    close = add_exemplar(wrench, unit(0, 1, 0, 0), 2)
    annotation = model_annotation(make_image(project))
    # The older run reads its gallery (wrench's exemplar in it) and is held up ...
    older = current_version(project.pk)
    gallery = load_gallery(project_id=project.pk, embedder_version=VERSION, exemplar_ids=older.exemplar_ids,
                           negative_ids=older.negative_ids)
    matcher = project_matcher(project, embedder_version=VERSION)
    # ... while wrench's exemplar goes and the newer re-score writes hammer.
    delete_exemplar(project=project, exemplar_id=close.pk)
    assert rescore_project(project_id=project.pk) == 1
    annotation.refresh_from_db()
    assert annotation.label_class_id == hammer.pk
    written = AnnotationEvent.objects.filter(annotation_id=annotation.pk).count()
    # The older run comes to write: nothing, the gallery moved on.
    assert _rescore_images(project.pk, VERSION, [annotation.image_id], gallery, matcher, classes_by_id(project.pk),
                           older.number) == 0
    annotation.refresh_from_db()
    assert annotation.label_class_id == hammer.pk
    assert AnnotationEvent.objects.filter(annotation_id=annotation.pk).count() == written
