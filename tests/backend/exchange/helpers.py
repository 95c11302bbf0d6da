"""Builders for exchange tests: a small project with tricky masks, and export/import runners."""
from __future__ import annotations

import io
import json
import os
import zipfile
from contextlib import contextmanager

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from backend.annotations.models import Annotation, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.exchange import geometry, services
from backend.exchange.models import ExportJob, ImportJob

from ..factories import make_class, make_image, make_project

H, W = 48, 64
ACCEPTED = {"class_review": ReviewState.ACCEPTED, "mask_review": ReviewState.ACCEPTED}


def rect(y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def masks() -> dict[str, np.ndarray]:
    """A plain box, a blob with a hole, a two-part object, and a diagonal sliver with a 1-px part."""
    ring = rect(5, 25, 30, 55)
    ring[10:18, 38:46] = 0
    two = rect(30, 40, 2, 12) | rect(30, 44, 20, 26)
    sliver = np.eye(12, dtype=np.uint8)
    thin = np.zeros((H, W), np.uint8)
    thin[30:42, 40:52] = sliver
    thin[45, 60] = 1
    return {"box": rect(2, 20, 3, 25), "ring": ring, "two": two, "thin": thin}


def annotate(image, label_class, mask, **fields) -> Annotation:
    rle = geometry.encode(mask)
    bbox, area = mask_geometry(rle)
    values = {"source": Source.HUMAN, **ACCEPTED, **fields}
    return Annotation.objects.create(
        project=image.project, image=image, label_class=label_class, mask_rle=rle, bbox=bbox, area=area, **values
    )


def build_project(owner, *, name="Src", with_classes=True):
    project = make_project(owner, name=name)
    classes = [make_class(project, "hammer"), make_class(project, "wrench")] if with_classes else []
    images = [make_image(project, width=W, height=H, seed=s) for s in (1, 2, 3)]
    return project, classes, images


def populate(project, classes, images) -> dict[str, Annotation]:
    hammer, wrench = classes
    m = masks()
    return {
        "box": annotate(images[0], hammer, m["box"], det_score=0.9, class_score=0.75,
                        candidates=[{"class_id": hammer.pk, "name": "hammer", "score": 0.75}]),
        "ring": annotate(images[0], wrench, m["ring"]),
        "two": annotate(images[1], wrench, m["two"]),
        "thin": annotate(images[1], hammer, m["thin"]),
        "pending": annotate(images[2], hammer, rect(5, 15, 5, 15), source=Source.MODEL,
                            class_review=ReviewState.PENDING, mask_review=ReviewState.PENDING),
        "rejected": annotate(images[2], hammer, rect(20, 30, 20, 30), class_review=ReviewState.REJECTED),
    }


@contextmanager
def run_here():
    """Exports and imports started inside are run by the test itself: their messages go to a queue
    no worker consumes. A live test worker would otherwise race the test for the job (after its
    commit, it is only marked sent once the publish returns, which gives the worker time to claim it)."""
    queue = f"run-here-{os.getpid()}-"
    with override_settings(QUEUE_CPU=f"{queue}cpu", QUEUE_GPU=f"{queue}gpu"):
        yield


def export(project, user, fmt="coco", **options) -> tuple[ExportJob, zipfile.ZipFile]:
    with run_here():
        job = services.start_export(project=project, user=user, format=fmt, **options)
    job = services.run_export(job_id=job.pk)
    assert job.status == "done", job.error
    from django.core.files.storage import default_storage

    with default_storage.open(job.result_file, "rb") as fh:
        return job, zipfile.ZipFile(io.BytesIO(fh.read()))


def zip_upload(zf: zipfile.ZipFile, name="export.zip") -> SimpleUploadedFile:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in zf.infolist():
            dst.writestr(info.filename, zf.read(info.filename))
    return SimpleUploadedFile(name, out.getvalue(), content_type="application/zip")


def json_upload(doc, name="annotations.json") -> SimpleUploadedFile:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return SimpleUploadedFile(name, data, content_type="application/json")


def run_import(project, user, fmt, upload, **options) -> ImportJob:
    with run_here():
        job = services.start_import(project=project, user=user, format=fmt, upload=upload, **options)
    return services.run_import(job_id=job.pk)
