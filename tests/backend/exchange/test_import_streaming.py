"""Imports at scale: the upload is streamed (never json.load-ed whole), checked in a first pass
that writes nothing, then written in batches in one transaction, with progress on the row."""
from __future__ import annotations

import io
import json
import time
import tracemalloc

import numpy as np
import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from backend.annotations.models import Annotation, AnnotationEvent
from backend.annotations.changes import snapshot
from backend.exchange import geometry, importing, services
from backend.exchange.formats.coco import CocoParser
from backend.exchange.formats.labelstudio import LabelStudioParser
from backend.exchange.formats.native import NativeParser
from backend.exchange.import_upload import UploadEntry
from backend.exchange.models import ImportJob
from backend.projects.models import LabelClass

from .helpers import H, W, build_project, json_upload, rect, run_here, run_import


def shape_for(i: int) -> tuple[str, dict | list, np.ndarray]:
    """Annotation i's segmentation in one of four encodings, and the mask it must become."""
    y, x = i % 30, (i // 30) % 40
    mask = rect(y, y + 10, x, x + 12)
    kind = i % 4
    if kind == 0:
        return "segmentation", geometry.encode(mask), mask
    if kind == 1:
        runs = geometry.row_major_runs(mask.T)  # column-major runs = COCO's uncompressed counts
        return "segmentation", {"size": [H, W], "counts": runs}, mask
    if kind == 2:
        return "segmentation", [[x, y, x + 12, y, x + 12, y + 10, x, y + 10]], mask
    return "bbox", [x, y, 12, 10], mask


def coco_doc(n: int, bad: dict[int, dict] | None = None) -> dict:
    annotations = []
    for i in range(n):
        field, value, _ = shape_for(i)
        ann = {"id": i + 1, "image_id": 1 + i % 3, "category_id": 1 + i % 2, field: value, "iscrowd": 0,
               "score": round(0.5 + (i % 50) / 100, 2)}
        annotations.append({**ann, **(bad or {}).get(i, {})})
    return {
        "info": {}, "categories": [{"id": 1, "name": "hammer"}, {"id": 2, "name": "wrench"}],
        "images": [{"id": k, "file_name": f"img{k}.png", "width": W, "height": H} for k in (1, 2, 3)],
        "annotations": annotations,
    }


def counts():
    return Annotation.objects.count(), AnnotationEvent.objects.count(), LabelClass.objects.count()


def observe_progress(job: ImportJob):
    """The real progress reporter, plus what another connection sees on the row after each call
    (what the API would answer at that moment)."""
    reporter = services.ImportProgress(job)
    observer = connections.create_connection(DEFAULT_DB_ALIAS)
    seen = []

    def report(stage, done, total):
        reporter(stage, done, total)
        with observer.cursor() as cursor:
            cursor.execute(f"SELECT progress_stage, progress_done, progress_total FROM {ImportJob._meta.db_table} "
                           "WHERE id = %s", [job.pk])
            seen.append(cursor.fetchone())

    return report, seen, lambda: (reporter.close(), observer.close())


@pytest.mark.django_db(transaction=True)
def test_streamed_coco_import_writes_every_row_and_event_in_batches_with_progress(admin_user):
    project, classes, images = build_project(admin_user, name="Big")
    n = 3_000
    with run_here():
        job = services.start_import(project=project, user=admin_user, format="coco",
                                    upload=json_upload(coco_doc(n), "instances.json"))
    services._claim(ImportJob, job.pk)
    job = ImportJob.objects.select_related("project").get(pk=job.pk)
    report, seen, close = observe_progress(job)
    try:
        errors, result = importing.apply_import(job=job, progress=report, batch=700)
    finally:
        close()
    assert errors == []
    assert result["annotations"] == n and result["images"] == 3 and result["classes_created"] == []

    anns = list(Annotation.objects.filter(project=project).order_by("id"))
    assert len(anns) == n
    by_name = {c.name: c.pk for c in classes}
    for i, ann in enumerate(anns):  # every row, in file order, with its exact mask
        _, _, mask = shape_for(i)
        assert ann.image_id == images[i % 3].pk and ann.label_class_id == by_name[("hammer", "wrench")[i % 2]]
        assert np.array_equal(geometry.decode(ann.mask_rle), mask), i
        assert ann.area == int(mask.sum()) and ann.det_score == round(0.5 + (i % 50) / 100, 2)
        assert (ann.source, ann.class_review, ann.mask_review, ann.created_by_id) == ("model", "pending", "pending", admin_user.pk)
    assert result["box_only"] == [a.pk for i, a in enumerate(anns) if i % 4 == 3]
    events = list(AnnotationEvent.objects.filter(project=project).order_by("annotation_id"))
    assert [e.annotation_id for e in events] == [a.pk for a in anns]
    assert all(e.action == "created" and e.before is None and e.actor_id == admin_user.pk for e in events)
    assert events[5].after == json.loads(json.dumps(snapshot(anns[5]))) and events[-1].image_id == anns[-1].image_id

    # Progress was visible to other connections while it ran, pass 2's open transaction included:
    # checking every 700 items, then writing batch by batch, ending at n of n.
    checking = [s for s in seen if s[0] == "checking"]
    writing = [s for s in seen if s[0] == "writing"]
    assert checking[:3] == [("checking", 0, 0), ("checking", 700, 0), ("checking", 1400, 0)]
    assert checking[-1] == ("checking", n, n)
    assert writing == [("writing", d, n) for d in (0, 700, 1400, 2100, 2800, n, n)]


@pytest.mark.django_db(transaction=True)
def test_image_deleted_between_the_passes_applies_nothing(admin_user):
    project, _, images = build_project(admin_user, name="Gone")
    with run_here():
        job = services.start_import(project=project, user=admin_user, format="coco",
                                    upload=json_upload(coco_doc(300), "instances.json"))
    services._claim(ImportJob, job.pk)
    job = ImportJob.objects.select_related("project").get(pk=job.pk)
    reporter, gone = services.ImportProgress(job), images[1].pk

    def report(stage, done, total):
        reporter(stage, done, total)
        if (stage, total) == ("checking", 300):  # pass 1 is over: someone deletes an image
            images[1].delete()

    before = counts()
    errors, result = importing.apply_import(job=job, progress=report)
    reporter.close()
    assert errors == [{"item": "instances.json",
                       "error": f"image {gone} was deleted while the import ran; nothing was imported"}]
    assert result == {"error_count": 1} and counts() == before


@pytest.mark.django_db
def test_invalid_item_near_the_end_applies_nothing_and_names_it(target, admin_user):
    project, _, _ = target
    n = 2_500
    doc = coco_doc(n, bad={n - 3: {"segmentation": [[0, 0, 100, 0, 100, 10]]}})
    before = counts()
    job = run_import(project, admin_user, "coco", json_upload(doc, "instances.json"))
    assert job.status == "failed"
    assert len(job.errors) == 1 and job.errors[0]["item"] == f"instances.json: annotation {n - 2}", job.errors
    assert "reaches outside the image" in job.errors[0]["error"]
    assert job.result == {"error_count": 1}
    assert counts() == before


@pytest.mark.django_db
def test_many_bad_items_give_a_bounded_error_list_with_the_total(target, admin_user):
    project, _, _ = target
    n = 4_000
    doc = coco_doc(n, bad={i: {"category_id": 9} for i in range(n) if i % 4 != 1})
    before = counts()
    job = run_import(project, admin_user, "coco", json_upload(doc, "instances.json"))
    bad = n - n // 4
    assert job.status == "failed" and job.result == {"error_count": bad}
    assert len(job.errors) == importing.MAX_ERRORS + 1
    assert job.errors[0] == {"item": "instances.json: annotation 1", "error": "unknown category_id 9"}
    assert job.errors[-1] == {"item": "…", "error": f"and {bad - importing.MAX_ERRORS} more errors"}
    assert counts() == before


@pytest.mark.django_db
def test_truncated_file_is_malformed_json_and_applies_nothing(target, admin_user):
    project, _, _ = target
    data = json.dumps(coco_doc(500)).encode()[:-4000]
    before = counts()
    job = run_import(project, admin_user, "coco", json_upload(data, "instances.json"))
    assert job.status == "failed" and job.errors[-1]["item"] == "instances.json"
    assert "malformed JSON" in job.errors[-1]["error"]
    assert counts() == before


class TrackedFile(io.BytesIO):
    """A file that remembers how far it has been read."""

    def __init__(self, data: bytes, log: list):
        super().__init__(data)
        self.log = log
        log.append(self)


def entry_over(data: bytes, name: str):
    opened: list[TrackedFile] = []
    return UploadEntry(name, lambda: TrackedFile(data, opened)), opened


def native_doc(n: int) -> list:
    mask = rect(2, 10, 3, 20)
    det = {"bbox_xyxy": [3, 2, 20, 10], "class": "hammer", "score_metric": 0.5, "score_vlm": 0.6, "ranked": [],
           "mask_rle": {"size": [H, W], "counts": geometry.row_major_runs(mask), "order": "row-major"}}
    return [{"image": f"img{1 + i % 3}.png", "detections": [det]} for i in range(n)]


def labelstudio_doc(n: int) -> list:
    region = {"id": "a", "type": "rectanglelabels", "original_width": W, "original_height": H,
              "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["hammer"]}}
    return [{"id": i, "data": {"image": f"/data/upload/1/img{1 + i % 3}.png"}, "annotations": [{"result": [region]}]}
            for i in range(n)]


@pytest.mark.parametrize("parser, doc", [
    (CocoParser(), coco_doc(24_000)), (NativeParser(), native_doc(12_000)), (LabelStudioParser(), labelstudio_doc(12_000)),
], ids=["coco", "native", "labelstudio"])
def test_json_readers_stream_the_file(parser, doc):
    data = json.dumps(doc).encode()
    entry, opened = entry_over(data, "big.json")
    records = parser.parse([entry])
    first = next(records)
    assert first.file_name == "img1.png"
    # The first record came while its stream had read a small part of the file: no json.load.
    assert opened[-1].tell() < len(data) / 10, (opened[-1].tell(), len(data))
    tracemalloc.start()
    try:
        count = 1 + sum(1 for _ in records)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == len(doc) if not isinstance(parser, CocoParser) else count == len(doc["annotations"])
    # Reading the rest holds an item at a time: under 1 MB for a 3 MB+ document (whose parse
    # as one Python object would take several times its size).
    assert peak < 1_000_000 < len(data) / 3, (peak, len(data))


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_big_import_through_the_worker_reports_progress_and_applies(celery_worker, admin_user, client_for):
    project, _, _ = build_project(admin_user, name="Worker")
    n = 5_000
    client = client_for(admin_user)
    response = client.post(f"/api/projects/{project.pk}/imports/",
                           {"file": json_upload(coco_doc(n), "instances.json"), "format": "coco"}, format="multipart")
    assert response.status_code == 202, response.content
    url = f"/api/projects/{project.pk}/imports/{response.json()['id']}/"
    deadline, body = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in {"done", "failed"}:
            break
        time.sleep(0.05)
    assert body["status"] == "done", body["errors"]
    assert body["progress"] == {"done": n, "total": n, "stage": "writing"}
    assert body["result"]["annotations"] == n and len(body["result"]["box_only"]) == n // 4
    assert Annotation.objects.filter(project=project).count() == n
    assert AnnotationEvent.objects.filter(project=project, action="created").count() == n


@pytest.mark.django_db
def test_unhashable_ids_are_item_errors_not_a_crash(target, admin_user):
    project, _, _ = target
    doc = coco_doc(3, bad={0: {"image_id": [1]}, 1: {"category_id": {"id": 1}}})
    job = run_import(project, admin_user, "coco", json_upload(doc, "instances.json"))
    assert job.status == "failed" and job.errors == [
        {"item": "instances.json: annotation 1", "error": "image_id [1] is not in the file's images"},
        {"item": "instances.json: annotation 2", "error": "unknown category_id {'id': 1}"},
    ]


@pytest.mark.django_db(transaction=True)
def test_an_image_someone_else_claims_stops_the_import(admin_user):
    """Every annotation write on an image another person holds answers 409; an import wrote into
    it all the same. It now applies nothing and names the image and the holder."""
    from datetime import timedelta

    from django.utils import timezone

    from backend.images.models import Image

    from ..factories import make_user

    project, _, images = build_project(admin_user, name="Held")
    reviewer = make_user("rev1")
    Image.objects.filter(pk=images[2].pk).update(claimed_by=reviewer, claim_expires_at=timezone.now() + timedelta(minutes=5))
    before = counts()
    job = run_import(project, admin_user, "coco", json_upload(coco_doc(30), "instances.json"))
    assert job.status == "failed", job.result
    assert "is held by rev1" in job.errors[0]["error"] and "nothing was imported" in job.errors[0]["error"]
    assert counts() == before
    # Expired, or the importer's own claim: no obstacle.
    Image.objects.filter(pk=images[2].pk).update(claimed_by=admin_user)
    assert run_import(project, admin_user, "coco", json_upload(coco_doc(30), "instances.json")).status == "done"


@pytest.mark.django_db(transaction=True)
def test_progress_never_waits_on_a_job_row_someone_holds(admin_user):
    """A project delete locked the job row while its cascade waited for the import's transaction,
    which waited in Python for its progress UPDATE on that row: delete, import and the workers
    behind them hung for good (a cycle PostgreSQL cannot detect)."""
    import threading

    from django.db import transaction

    project, _, _ = build_project(admin_user, name="Held")
    with run_here():
        job = services.start_import(project=project, user=admin_user, format="coco",
                                    upload=json_upload(coco_doc(3), "instances.json"))
    reporter = services.ImportProgress(job)
    deleter = connections.create_connection(DEFAULT_DB_ALIAS)
    deleter.set_autocommit(False)
    with deleter.cursor() as cursor:  # what the delete's cascade holds while it waits
        cursor.execute(f"SELECT id FROM {ImportJob._meta.db_table} WHERE id = %s FOR UPDATE", [job.pk])
    finished = threading.Event()

    def write_inside_the_import_transaction():
        try:
            with transaction.atomic():
                reporter("writing", 2, 3)
                finished.set()
        finally:
            reporter.close()
            connections.close_all()

    writer = threading.Thread(target=write_inside_the_import_transaction)
    writer.start()
    try:
        assert finished.wait(10), "the progress write waited on the held job row"
    finally:
        deleter.rollback()
        deleter.close()
        writer.join(30)
    assert ImportJob.objects.get(pk=job.pk).status == "queued"
