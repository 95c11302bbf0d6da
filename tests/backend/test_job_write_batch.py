"""services.write_results: several images' results in one transaction, with the per-image rules of
write_image_result (replace untouched proposals, keep what people touched, a finished item is never
written twice, a bad image fails alone)."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backend.annotations.models import Annotation, AnnotationEvent
from backend.images.models import Image
from backend.jobs import services
from backend.jobs.models import ItemStatus, JobStatus

from .factories import make_class, make_image, make_model_annotation, make_project, make_user, rect_rle

pytestmark = pytest.mark.django_db


def _det(label, x0, y0, x1, y1, height=48, width=64):
    return {"label_class": label, "mask_rle": rect_rle(height, width, x0, y0, x1, y1),
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "area": (x1 - x0) * (y1 - y0),
            "det_score": 0.9, "mask_score": 0.8, "class_score": 0.7, "class_margin": 0.2, "candidates": [],
            "embedding": [0.1] * 384, "embedder_version": "v1", "class_review": "pending", "mask_review": "pending"}


@pytest.fixture
def batch():
    owner = make_user("owner")
    project = make_project(owner)
    hammer = make_class(project, "hammer")
    images = [make_image(project, seed=i) for i in range(4)]
    job = services.start_job(project=project, user=owner, images="all")  # its message goes out on commit: never here
    return project, hammer, images, job


def test_several_images_in_one_write_each_by_the_per_image_rules(batch):
    project, hammer, (a, b, c, d), job = batch
    stale = make_model_annotation(a, hammer)  # an earlier job's untouched proposal: replaced
    kept = make_model_annotation(b, hammer)
    Annotation.objects.filter(pk=kept.pk).update(class_review="accepted")  # a person reviewed it: kept
    bad = _det(hammer, 1, 1, 5, 5)
    bad["mask_rle"] = {"size": [480, 640], "counts": bad["mask_rle"]["counts"]}  # not this image's size
    results = [
        services.ItemResult(a.pk, [_det(hammer, 30, 5, 50, 30), _det(hammer, 2, 30, 12, 44)], {"detect": 10.0}),
        # the same object as the one a person touched (IoU 1): skipped; a new one: written
        services.ItemResult(b.pk, [_det(hammer, 4, 4, 20, 16), _det(hammer, 40, 20, 60, 40)], {"detect": 20.0}),
        services.ItemResult(c.pk, [bad], {"detect": 30.0}),
        services.ItemResult(d.pk, [], {"detect": 40.0}),
    ]
    with CaptureQueriesContext(connection) as queries:
        outcome = services.write_results(job_id=job.pk, results=results)
    assert outcome == {a.pk: 2, b.pk: 1, d.pk: 0}
    # One INSERT of all annotations (embeddings included) and one of all events, whatever the image count.
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len([s for s in inserts if "annotations_annotation\"" in s.split("(")[0]]) == 1
    assert len([s for s in inserts if "annotations_annotationevent" in s.split("(")[0]]) == 1

    assert not Annotation.objects.filter(pk=stale.pk).exists()
    assert Annotation.objects.filter(pk=kept.pk).exists()
    assert Annotation.objects.filter(image=a, job_id=job.pk).count() == 2
    assert Annotation.objects.filter(image=b, job_id=job.pk).count() == 1
    assert not Annotation.objects.filter(image=c).exists()
    assert Annotation.objects.get(image=a, bbox=[30.0, 5.0, 20.0, 25.0]).embedding is not None

    items = {i.image_id: i for i in job.items.all()}
    assert [items[i.pk].status for i in (a, b, c, d)] == [ItemStatus.DONE, ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.DONE]
    assert (items[a.pk].detections, items[b.pk].detections, items[d.pk].detections) == (2, 1, 0)
    assert items[a.pk].stage_ms == {"detect": 10.0} and items[a.pk].lease_owner == ""
    assert "does not match the image size" in items[c.pk].error
    job.refresh_from_db()
    assert (job.processed, job.failed, job.status) == (4, 1, JobStatus.DONE)
    assert job.stage_ms == {"detect": 70.0}  # the written images' stage times, summed
    assert Image.objects.get(pk=d.pk).status == "prelabeled"  # examined, found nothing

    # Idempotent: a redelivered batch writes nothing, counts nothing.
    events = AnnotationEvent.objects.count()
    assert services.write_results(job_id=job.pk, results=results) == {}
    job.refresh_from_db()
    assert (job.processed, job.failed) == (4, 1) and AnnotationEvent.objects.count() == events


def test_only_the_unfinished_items_of_a_batch_are_written(batch):
    project, hammer, (a, b, *_), job = batch
    assert services.write_image_result(job_id=job.pk, image_id=a.pk, detections=[_det(hammer, 30, 5, 50, 30)], stage_ms={}) == 1
    outcome = services.write_results(job_id=job.pk, results=[
        services.ItemResult(a.pk, [_det(hammer, 1, 1, 9, 9)], {}), services.ItemResult(b.pk, [_det(hammer, 1, 1, 9, 9)], {}),
    ])
    assert outcome == {b.pk: 1}
    assert Annotation.objects.filter(image=a).count() == 1  # a's first result stands
    job.refresh_from_db()
    assert job.processed == 2


def test_a_class_deactivated_while_the_job_ran_is_not_written(batch):
    """Black-box round 13: a running job wrote 16 proposals of a class deactivated after it
    started; no person could choose that class, and it could no longer be deleted."""
    project, hammer, (a, *_), job = batch
    wrench = make_class(project, "wrench")
    det = _det(hammer, 30, 5, 50, 30)
    det["candidates"] = [{"class_id": hammer.pk, "name": "hammer", "score": 0.7, "exemplar_id": 1},
                         {"class_id": wrench.pk, "name": "wrench", "score": 0.4, "exemplar_id": 2}]
    type(hammer).objects.filter(pk=hammer.pk).update(active=False)
    assert services.write_results(job_id=job.pk, results=[services.ItemResult(a.pk, [det], {})]) == {a.pk: 1}
    written = Annotation.objects.get(image=a, job_id=job.pk)
    assert written.label_class_id is None and written.class_score is None
    assert [c["class_id"] for c in written.candidates] == [wrench.pk]
    hammer.refresh_from_db()
    hammer.delete()  # nothing of it was written: it can go


def test_the_live_notice_of_a_batch_names_its_job(batch, django_capture_on_commit_callbacks):
    """Black-box round 15: a reviewer's open image lost three proposals to a re-run with no word;
    the notice names the job, so the workspace can say which job rewrote the image."""
    from backend.core import events
    from backend.realtime import backlog

    project, hammer, (a, *_), job = batch
    make_model_annotation(a, hammer)
    events.publisher.flush()
    start = backlog.current(project.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.write_results(job_id=job.pk, results=[services.ItemResult(a.pk, [_det(hammer, 30, 5, 50, 30)], {})])
    events.publisher.flush()
    bulk = [e for e in backlog.since(project.pk, start).events if e["type"] == "annotations.bulk"]
    assert bulk and bulk[0]["job"] == job.number and bulk[0]["images"] == [a.pk], bulk
