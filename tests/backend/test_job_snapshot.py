"""A job runs with the settings frozen when it started, matches once, and a boxes job keeps the
imported class and segments each box on its ROI (real worker, real tiny pipeline)."""
import pytest
from django.db import transaction

from backend.annotations.models import Annotation, AnnotationEvent, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.images.models import Image
from backend.jobs import services
from backend.jobs.models import JobStatus
from backend.jobs.rescoring import rescore_project
from backend.projects.services import update_project

from .factories import make_class, make_model_annotation, rect_rle
from .test_jobs import build_project, wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_job_matches_with_its_snapshot_not_the_live_project(celery_worker):
    owner, project, _ = build_project(n_images=2, top_k=1, unique_classes_per_image=False)
    with transaction.atomic():  # the batches are sent on commit: after the project has changed
        job = services.start_job(project=project, user=owner, images="new")
        # No cosine reaches 1.0: with the live settings every proposal would be unknown, 2 candidates.
        update_project(project_id=project.pk, version=project.version, unknown_threshold=1.0, top_k=2)
    job = wait_for_job(job.pk)
    assert job.status == JobStatus.DONE, job.error
    assert (job.settings_snapshot["unknown_threshold"], job.settings_snapshot["top_k"]) == (0.0, 1)
    # What the job wrote, from its own audit events: the gallery upload's re-scoring may run after
    # the job and re-label pending objects with the live settings, which is right for re-scoring.
    written = [e.after for e in AnnotationEvent.objects.filter(project=project, action="created", source="model")]
    assert written, "the tiny pipeline proposed nothing"
    for after in written:
        assert len(after["candidates"]) == 1, after["candidates"]  # the snapshot's top_k
        best = after["candidates"][0]
        # the snapshot's unknown threshold (0.0) decides the class
        assert after["label_class"] == (best["class_id"] if best["score"] >= 0.0 else None)
    assert any(after["label_class"] for after in written), "no proposal reached the snapshot's threshold"
    # stage_ms.match is the pass whose result was written (there is no other)
    assert all("match" in item.stage_ms for item in job.items.all())


def _grown(bbox, margin):
    """The ROI crop of an xywh box, as ml.segmenter.roi_crop computes it (xyxy, ints)."""
    from ml.segmenter import roi_crop

    x, y, w, h = bbox
    return roi_crop([x, y, x + w, y + h], margin, 10**6, 10**6)


def test_boxes_job_keeps_the_imported_class_and_segments_the_roi(celery_worker):
    owner, project, _ = build_project(n_images=1, unique_classes_per_image=False)
    saw = make_class(project, "saw")  # no exemplars: matching alone can never give this class
    image = Image.objects.get(project=project)
    with_class = make_model_annotation(image, saw)  # box-shaped, as an import leaves it (class_score 0.8)
    rle = rect_rle(image.height, image.width, 60, 40, 110, 85)
    bbox, area = mask_geometry(rle)
    without_class = Annotation.objects.create(
        project=project, image=image, label_class=None, mask_rle=rle, bbox=bbox, area=area, source=Source.MODEL,
        class_review=ReviewState.PENDING, mask_review=ReviewState.PENDING,
    )
    rois = {with_class.pk: _grown(with_class.bbox, 0.1), without_class.pk: _grown(without_class.bbox, 0.1)}

    job = wait_for_job(services.start_job(project=project, user=owner, images=[image.pk], kind="boxes").pk)
    assert job.status == JobStatus.DONE, job.error
    after = list(Annotation.objects.filter(image=image))
    assert {with_class.pk, without_class.pk}.isdisjoint(a.pk for a in after), "imported boxes are replaced"

    def from_box(pk):
        x1, y1, x2, y2 = rois[pk]
        # the mask never leaves the box grown by the default roi_margin (0.1 per side)
        inside = [a for a in after if x1 <= a.bbox[0] and a.bbox[0] + a.bbox[2] <= x2
                  and y1 <= a.bbox[1] and a.bbox[1] + a.bbox[3] <= y2]
        assert len(inside) == 1, (pk, rois[pk], [a.bbox for a in after])
        return inside[0]

    kept = from_box(with_class.pk)
    assert kept.label_class_id == saw.pk, "the imported class was re-matched away"
    assert (kept.class_review, kept.mask_review, kept.source) == (ReviewState.PENDING, ReviewState.PENDING, Source.MODEL)
    assert kept.class_score == pytest.approx(0.8) and kept.job_id == job.pk
    # the kept class leads the candidates (no exemplar: not a gallery match); the match ranks the rest
    assert kept.candidates[0] == {"class_id": saw.pk, "name": "saw", "score": 0.8, "exemplar_id": None}
    assert {c["name"] for c in kept.candidates[1:]} == {"hammer", "wrench"} and kept.embedding is not None
    unclassed = from_box(without_class.pk)  # no class came with it: the match decides
    best = unclassed.candidates[0]
    assert unclassed.label_class_id == (best["class_id"] if best["score"] >= 0.0 else None)
    assert unclassed.class_score == pytest.approx(best["score"], abs=1e-4)
    # a gallery change re-scores matched classes, never the class that came with the box
    rescore_project(project_id=project.pk)
    kept.refresh_from_db()
    assert kept.label_class_id == saw.pk
