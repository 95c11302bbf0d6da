"""Black-box round 15 (jobs and learning): one gallery exemplar whose stored file went bad failed
every job of its project on every image ("UnidentifiedImageError: cannot identify image file
<_io.BytesIO>", blamed on each healthy image; retry could never succeed), and a training whose
approved image could not be read failed with the same unnamed text. The exemplar is left out of
matching (named in the worker's log); the training names the image."""
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.gallery.models import GalleryEmbedding
from backend.gallery.services import upload_exemplars
from backend.images.services import upload_images
from backend.jobs import services as job_services
from backend.learning.models import TrainingRun

from .factories import make_class, make_project, make_user, synthetic_png
from .test_jobs import wait_for_job
from .test_learning_jobs import reviewed_project, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def spoil(name: str) -> None:
    Path(default_storage.path(name)).write_bytes(b"not an image any more")


def test_one_unreadable_exemplar_does_not_fail_the_projects_jobs(celery_worker):
    owner = make_user("gallery-owner")
    project = make_project(owner, box_threshold=0.0, text_threshold=0.0)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    for label, seeds in ((hammer, (101, 102)), (wrench, (103,))):
        upload_exemplars(project=project, user=owner, class_id=label.pk,
                         files=[SimpleUploadedFile(f"{label.name}{s}.png", synthetic_png(s)) for s in seeds])
    bad = upload_exemplars(project=project, user=owner, class_id=wrench.pk,
                           files=[SimpleUploadedFile("new_wrench.png", synthetic_png(104))]).created[0]
    spoil(bad.file.name)
    GalleryEmbedding.objects.filter(gallery_image=bad).delete()  # as if it had never been embedded
    upload_images(project=project, user=owner, files=[SimpleUploadedFile(f"img{i}.png", synthetic_png(i)) for i in range(3)])
    job = wait_for_job(job_services.start_job(project=project, user=owner, images="all").pk)
    assert job.status == "done" and job.failed == 0, (job.status, job.error, list(job.items.values("status", "error")))
    assert not GalleryEmbedding.objects.filter(gallery_image=bad).exists()
    assert GalleryEmbedding.objects.filter(gallery_image__project=project).count() == 3


def test_a_training_names_the_approved_image_it_cannot_read(celery_worker, client_for, settings, tiny_models_config):
    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner, project, images = reviewed_project(n_reviewed=2, n_pending=0)
    spoil(images[0].file.name)
    # A Mask R-CNN reads every approved image (a head uses the job's stored crop vectors).
    params = {"arch": "tiny", "steps": 2, "min_size": 64, "max_size": 128, "batch_size": 1}
    response = client_for(owner).post(f"/api/projects/{project.pk}/trainings/", {"kind": "maskrcnn", "params": params},
                                      format="json")
    assert response.status_code == 201, response.content
    run = wait_for(TrainingRun, response.json()["id"])
    assert run.state == "failed"
    assert run.error.startswith(f"could not read the image '{images[0].original_name}' (#{images[0].pk}): "), run.error
    assert "UnidentifiedImageError" not in run.error and "BytesIO" not in run.error


def test_an_exemplar_deleted_while_it_is_embedded_is_left_out(settings, tiny_models_config):
    """Black-box round 16: a class deleted just after a job started took its exemplars while the job
    embedded them, and the job's batch failed on every image with "IntegrityError: insert or update
    on table gallery_galleryembedding violates foreign key constraint"."""
    from backend.gallery.models import GalleryImage
    from backend.jobs.engine import get_pipeline
    from backend.jobs.gallery_index import ensure_exemplar_embeddings

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner = make_user("race-owner")
    project = make_project(owner)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    kept = upload_exemplars(project=project, user=owner, class_id=hammer.pk,
                            files=[SimpleUploadedFile("h.png", synthetic_png(201))]).created[0]
    going = upload_exemplars(project=project, user=owner, class_id=wrench.pk,
                             files=[SimpleUploadedFile("w.png", synthetic_png(202))]).created[0]
    GalleryEmbedding.objects.filter(gallery_image__project=project).delete()
    pipeline = get_pipeline()
    embed = pipeline.embed_crops

    def embed_while_the_class_goes(crops):
        GalleryImage.objects.filter(pk=going.pk).delete()  # the class delete's cascade, committed meanwhile
        return embed(crops)

    pipeline.embed_crops = embed_while_the_class_goes
    try:
        added = ensure_exemplar_embeddings(project_id=project.pk, pipeline=pipeline, exemplar_ids=[kept.pk, going.pk])
    finally:
        pipeline.embed_crops = embed
    assert added == 1
    assert list(GalleryEmbedding.objects.filter(gallery_image__project=project).values_list("gallery_image_id", flat=True)) == [kept.pk]


def test_segment_and_refine_on_an_unreadable_image_say_so_plainly(celery_worker, client_for):
    """Black-box round 16: a damaged or missing stored file answered 503 "Segmentation failed: cannot
    identify image file <_io.BytesIO object at 0x…>" (try later?) with a worker traceback per click."""
    owner = make_user("clicker")
    project = make_project(owner)
    damaged, missing = upload_images(project=project, user=owner, files=[
        SimpleUploadedFile("damaged.png", synthetic_png(301)), SimpleUploadedFile("missing.png", synthetic_png(302))]).created
    spoil(damaged.file.name)
    Path(default_storage.path(missing.file.name)).unlink()
    for image, why in ((damaged, "the stored file is not a readable image"), (missing, "the stored file is missing")):
        base = f"/api/projects/{project.pk}/images/{image.pk}"
        for answer in (client_for(owner).post(f"{base}/segment/", {"box": [4, 4, 40, 36]}, format="json"),
                       client_for(owner).post(f"{base}/refine/", {"points": [[20, 20]], "labels": [1]}, format="json")):
            assert answer.status_code == 422, answer.content
            body = answer.json()
            assert body["code"] == "image_unreadable"
            assert body["detail"].startswith(f"Could not read the image '{image.original_name}': {why}."), body
            assert "BytesIO" not in body["detail"] and "Errno" not in body["detail"]


def test_a_chunk_of_big_photos_ends_before_its_pixel_budget():
    """Black-box round 16: four 100 MP photos ran as one chunk (and the next chunk was read ahead):
    a worker at 8.8 GB with the tiny models. A chunk ends before its images pass the budget."""
    from backend.jobs.tasks import chunked

    mp = 1_000_000
    pixels = {1: 12 * mp, 2: 12 * mp, 3: 99 * mp, 4: 12 * mp, 5: 30 * mp, 6: 30 * mp, 7: mp, 8: mp, 9: mp, 10: mp, 11: mp}
    ids = list(pixels)
    assert chunked(ids, pixels, 4, 50 * mp) == [[1, 2], [3], [4, 5], [6, 7, 8, 9], [10, 11]]
    assert chunked(ids, {}, 4, 50 * mp) == [ids[0:4], ids[4:8], ids[8:]]  # sizes unknown: by count
