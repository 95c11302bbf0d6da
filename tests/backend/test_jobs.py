"""Pre-annotation jobs on a real Celery worker running the real (tiny) pipeline."""
import time

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations import services as annotation_services
from backend.annotations.models import Annotation, AnnotationEvent
from backend.gallery.services import upload_exemplars
from backend.images.models import Image
from backend.jobs import services
from backend.jobs.models import ItemStatus, JobStatus, PrelabelJob
from backend.projects.models import Role

from .factories import add_member, image_bytes, make_class, make_project, make_user

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def synthetic_png(seed: int) -> bytes:
    import io

    from PIL import Image as PILImage

    from ml.tiny import synthetic_image

    out = io.BytesIO()
    PILImage.fromarray(synthetic_image(seed)).save(out, format="PNG")
    return out.getvalue()


def build_project(n_images: int = 3, **fields):
    from backend.images.services import upload_images

    owner = make_user(f"owner{time.monotonic_ns()}")
    # Random-weight models score everything low: a zero threshold lets the detector's top-N through.
    project = make_project(owner, box_threshold=0.0, text_threshold=0.0, unknown_threshold=0.0, **fields)
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    for label, seeds in ((hammer, (101, 102)), (wrench, (103,))):
        files = [SimpleUploadedFile(f"{label.name}{s}.png", synthetic_png(s)) for s in seeds]
        upload_exemplars(project=project, user=owner, files=files, class_id=label.pk)
    report = upload_images(project=project, user=owner, files=[SimpleUploadedFile(f"img{i}.png", synthetic_png(i)) for i in range(n_images)])
    assert len(report.created) == n_images
    return owner, project, (hammer, wrench)


def wait_for_job(job_id: int, timeout: float = 180) -> PrelabelJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = PrelabelJob.objects.get(pk=job_id)
        if job.status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {PrelabelJob.objects.get(pk=job_id).status}")


def test_job_writes_model_annotations_with_scores_candidates_and_embeddings(celery_worker, client_for):
    owner, project, (hammer, wrench) = build_project()
    response = client_for(owner).post(f"/api/projects/{project.pk}/jobs/", {"images": "new"}, format="json")
    assert response.status_code == 201, response.content
    job = wait_for_job(response.json()["id"])
    assert job.status == JobStatus.DONE, job.error
    assert (job.total, job.processed, job.failed) == (3, 3, 0)
    assert set(job.stage_ms) >= {"detect", "segment", "embed", "match"}
    annotations = list(Annotation.objects.filter(project=project))
    assert annotations, "the tiny pipeline proposed nothing"
    for annotation in annotations:
        assert annotation.source == "model" and annotation.job_id == job.pk
        assert annotation.embedding is not None and len(annotation.embedding) > 0
        assert annotation.det_score is not None and annotation.mask_score is not None
        assert annotation.area > 0 and annotation.mask_rle["size"] == [annotation.image.height, annotation.image.width]
        names = [c["name"] for c in annotation.candidates]
        assert set(names) == {"hammer", "wrench"}, annotation.candidates
        assert annotation.candidates[0]["score"] >= annotation.candidates[-1]["score"]
        assert annotation.candidates[0]["exemplar_id"] is not None
    assert set(Image.objects.filter(project=project).values_list("status", flat=True)) == {"prelabeled"}
    created_events = AnnotationEvent.objects.filter(project=project, action="created").count()
    assert created_events == len(annotations)
    # The job's detail reports progress and per-stage timings through the API.
    detail = client_for(owner).get(f"/api/projects/{project.pk}/jobs/{job.pk}/").json()
    assert detail["status"] == "done" and detail["processed"] == 3 and detail["errors"] == []


def test_rerun_keeps_what_reviewers_touched(celery_worker):
    owner, project, (hammer, wrench) = build_project(n_images=1)
    first = wait_for_job(services.start_job(project=project, user=owner, images="new").pk)
    assert first.status == JobStatus.DONE
    image = Image.objects.get(project=project)
    proposals = list(Annotation.objects.filter(image=image).order_by("id"))
    assert len(proposals) >= 2, "need two proposals to review"
    accepted = annotation_services.review_annotation(
        project=project, annotation_id=proposals[0].pk, user=owner, version=proposals[0].version, target="both", decision="accepted",
    ) if proposals[0].label_class_id else annotation_services.update_annotation(
        project=project, annotation_id=proposals[0].pk, user=owner, version=proposals[0].version, class_id=hammer.pk,
    )
    edited = annotation_services.update_annotation(
        project=project, annotation_id=proposals[1].pk, user=owner, version=proposals[1].version,
        class_id=wrench.pk if proposals[1].label_class_id != wrench.pk else hammer.pk,
    )
    untouched_ids = {a.pk for a in proposals[2:]}
    kept = {a.pk: (a.version, a.label_class_id, a.mask_rle, a.class_review) for a in (accepted, edited)}

    second = wait_for_job(services.start_job(project=project, user=owner, images="all").pk)
    assert second.status == JobStatus.DONE
    after = {a.pk: a for a in Annotation.objects.filter(image=image)}
    for pk, state in kept.items():
        assert pk in after, "a reviewed annotation was deleted by a re-run"
        a = after[pk]
        assert (a.version, a.label_class_id, a.mask_rle, a.class_review) == state
    assert not untouched_ids & set(after), "untouched proposals of the first run should be replaced"
    assert all(a.job_id == second.pk for pk, a in after.items() if pk not in kept)


def test_gallery_change_rescores_stored_embeddings(celery_worker, client_for):
    from backend.jobs.rescoring import exemplars_missing_vectors

    owner, project, (hammer, wrench) = build_project(n_images=1)
    assert wait_for_job(services.start_job(project=project, user=owner).pk).status == JobStatus.DONE
    before = {a.pk: a.candidates for a in Annotation.objects.filter(project=project)}
    assert all({"hammer", "wrench"} == {c["name"] for c in cands} for cands in before.values())
    # Every exemplar already has a vector: re-scoring needs no model pass at all.
    assert not exemplars_missing_vectors(project_id=project.pk)
    response = client_for(owner).patch(
        f"/api/projects/{project.pk}/classes/{wrench.pk}/", {"active": False, "version": wrench.version}, format="json",
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = {a.pk: a.candidates for a in Annotation.objects.filter(project=project)}
        if all({c["name"] for c in cands} == {"hammer"} for cands in now.values()):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"candidates were not re-scored: {now}")
    assert set(now) == set(before), "re-scoring must update in place, not re-create"
    assert AnnotationEvent.objects.filter(project=project, action="rescored").count() == len(now)


def test_failed_image_is_reported_and_retried(celery_worker, client_for):
    from django.core.files.storage import default_storage

    owner, project, _ = build_project(n_images=2)
    broken = Image.objects.filter(project=project).order_by("id").first()
    content = default_storage.open(broken.file.name, "rb").read()
    default_storage.delete(broken.file.name)
    job = wait_for_job(services.start_job(project=project, user=owner).pk)
    assert job.status == JobStatus.DONE and job.failed == 1
    item = job.items.get(image=broken)
    assert item.status == ItemStatus.FAILED and "could not read the image" in item.error
    errors = client_for(owner).get(f"/api/projects/{project.pk}/jobs/{job.pk}/").json()["errors"]
    assert errors == [{"image": broken.pk, "name": broken.original_name, "error": item.error}]

    from django.core.files.base import ContentFile

    default_storage.save(broken.file.name, ContentFile(content))
    response = client_for(owner).post(f"/api/projects/{project.pk}/jobs/{job.pk}/retry-failed/")
    assert response.status_code == 200, response.content
    job = wait_for_job(job.pk)
    assert job.status == JobStatus.DONE and job.failed == 0 and job.processed == 2
    assert job.items.get(image=broken).status == ItemStatus.DONE


def test_cancel_and_permissions(client_for, settings):
    settings.QUEUE_GPU = "nobody-listens-gpu"
    owner, project, _ = build_project(n_images=2)
    viewer = make_user("viewer-jobs")
    add_member(project, viewer, Role.VIEWER)
    assert client_for(viewer).post(f"/api/projects/{project.pk}/jobs/", {}, format="json").status_code == 403
    # As the README's role table says: members read jobs, only admins start them.
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        member = make_user(f"{role}-jobs")
        add_member(project, member, role)
        assert client_for(member).post(f"/api/projects/{project.pk}/jobs/", {}, format="json").status_code == 403
        assert client_for(member).get(f"/api/projects/{project.pk}/jobs/").status_code == 200
    outsider = make_user("outsider-jobs")
    assert client_for(outsider).get(f"/api/projects/{project.pk}/jobs/").status_code == 404
    # No worker consumes that queue: the job stays queued until cancelled.
    job = services.start_job(project=project, user=owner)
    response = client_for(owner).post(f"/api/projects/{project.pk}/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert set(job.items.values_list("status", flat=True)) == {"cancelled"}
    again = client_for(owner).post(f"/api/projects/{project.pk}/jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_unconfigured_engine_names_the_setting(settings):
    from backend.jobs.engine import EngineNotConfigured, config_path

    settings.RAZMETKA_ML_CONFIG = ""
    with pytest.raises(EngineNotConfigured, match="RAZMETKA_ML_CONFIG"):
        config_path()


def test_a_missing_model_config_is_named_without_the_hosts_path(settings, tmp_path):
    """The message lands in the failed job that every member reads."""
    from backend.jobs.engine import EngineNotConfigured, config_path

    settings.RAZMETKA_ML_CONFIG = str(tmp_path / "gone" / "config.json")
    with pytest.raises(EngineNotConfigured) as raised:
        config_path()
    assert "…/gone/config.json" in str(raised.value) and str(tmp_path) not in str(raised.value)


def test_box_prompt_job_segments_imported_boxes(celery_worker, client_for):
    from .factories import make_model_annotation

    owner, project, (hammer, _) = build_project(n_images=1)
    image = Image.objects.get(project=project)
    imported = make_model_annotation(image, hammer)  # a box-shaped suggestion, as an import leaves it
    response = client_for(owner).post(f"/api/projects/{project.pk}/jobs/", {"images": [image.pk], "kind": "boxes"}, format="json")
    assert response.status_code == 201, response.content
    job = wait_for_job(response.json()["id"])
    assert job.status == JobStatus.DONE, job.error
    assert job.stage_ms.get("detect", 0) < 50, "no detector pass for given boxes"
    after = list(Annotation.objects.filter(image=image))
    assert len(after) == 1 and after[0].pk != imported.pk
    assert after[0].job_id == job.pk and after[0].embedding is not None and after[0].candidates
    assert after[0].mask_score is not None


def test_a_boxes_job_run_again_prompts_with_the_box_it_was_given(celery_worker, client_for):
    """Each run took the last run's mask bbox as its box, so the boxes drifted run after run;
    the object keeps the box it was made from and a re-run prompts with it again."""
    from backend.annotations.selectors import unreviewed_boxes

    from .factories import make_model_annotation

    owner, project, (hammer, _) = build_project(n_images=1)
    image = Image.objects.get(project=project)
    imported = make_model_annotation(image, hammer)
    Annotation.objects.filter(pk=imported.pk).update(bbox=[3.0, 4.0, 50.0, 40.0])  # a loose box, as imported
    for run in range(2):
        response = client_for(owner).post(f"/api/projects/{project.pk}/jobs/", {"images": [image.pk], "kind": "boxes"}, format="json")
        assert response.status_code == 201, response.content
        job = wait_for_job(response.json()["id"])
        assert job.status == JobStatus.DONE, job.error
        (made,) = Annotation.objects.filter(image=image)
        assert made.job_id == job.pk and made.prompt_box == [3.0, 4.0, 50.0, 40.0], (run, made.prompt_box)
        assert made.bbox != made.prompt_box  # the mask's own box
        assert [box for box, _, _ in unreviewed_boxes(image.pk)] == [[3.0, 4.0, 50.0, 40.0]]
    # A person's edit makes the object theirs (black-box round 16b: each re-run added one more copy
    # of an annotator's edited object): no longer a box to segment, and a re-run leaves it alone.
    Annotation.objects.filter(pk=made.pk).update(updated_by=owner)
    assert unreviewed_boxes(image.pk) == []
    response = client_for(owner).post(f"/api/projects/{project.pk}/jobs/", {"images": [image.pk], "kind": "boxes"}, format="json")
    if response.status_code == 201:
        wait_for_job(response.json()["id"])
    assert list(Annotation.objects.filter(image=image).values_list("pk", flat=True)) == [made.pk]


def test_a_cancel_closes_the_running_batch_and_nothing_lands_after_it(client_for, settings, tiny_models_config):
    """Cancel let a running batch finish: proposals were written seconds after the 200
    "cancelled" (black-box api6 F14)."""
    from backend.jobs import leases
    from backend.jobs.tasks import _run_claimed

    settings.QUEUE_GPU = "nobody-listens-gpu"
    settings.RAZMETKA_ML_CONFIG = tiny_models_config  # the batch would run the models, as a worker's does
    owner, project, _ = build_project(n_images=2)
    job = services.start_job(project=project, user=owner)
    ids = list(job.items.values_list("image_id", flat=True))
    job, todo = services.claim_items(job_id=job.pk, image_ids=ids, owner=leases.new_owner())  # a worker has them
    assert sorted(todo) == sorted(ids) and set(job.items.values_list("status", flat=True)) == {"running"}
    response = client_for(owner).post(f"/api/projects/{project.pk}/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert set(job.items.values_list("status", flat=True)) == {"cancelled"}
    assert _run_claimed(job, todo) == {"processed": 0, "annotations": 0, "cancelled": True}
    assert not Annotation.objects.filter(project=project).exists()
