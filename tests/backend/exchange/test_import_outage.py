"""An import that loses PostgreSQL after claiming its job is finished by its retry, exactly once.

Before, the run recorded the outage as the import's "internal error", could not even write that,
and left the job "running" for ever: the retry only took jobs nobody had claimed (a write that
had committed just before the outage must not apply twice). Now the writes and the job's "done"
commit in one transaction, so the retry (resume=True) knows which case it is in.

The outage is real: the test terminates the worker connection's PostgreSQL backend mid-import."""
from __future__ import annotations

import numpy as np
import pytest
from django.db import OperationalError, connection

from backend.annotations.models import Annotation, AnnotationEvent
from backend.exchange import geometry, importing, services
from backend.exchange.models import ImportJob
from backend.projects.models import LabelClass

from ...db_proxy import cut_own_connection
from .helpers import H, W, json_upload, rect, run_here

pytestmark = pytest.mark.django_db(transaction=True)


def seed_doc() -> list[dict]:
    mask = rect(4, 9, 10, 30)
    return [{"image": "img3.png", "detections": [{
        "bbox_xyxy": [10, 4, 30, 9], "class": "chisel", "score_vlm": 0.6,
        "mask_rle": {"size": [H, W], "counts": geometry.row_major_runs(mask), "order": "row-major"}}]}]


def start(project, user) -> ImportJob:
    with run_here():  # the test runs the import itself: no worker may take it first
        return services.start_import(project=project, user=user, format="native",
                                     upload=json_upload(seed_doc(), "predictions.json"), create_missing_classes=True)


def test_an_import_that_loses_the_database_while_writing_is_finished_by_its_retry(target, admin_user, monkeypatch):
    project, _, _ = target
    job = start(project, admin_user)
    real = importing.apply_changes

    def outage_then_write(**kwargs):
        cut_own_connection()
        return real(**kwargs)

    monkeypatch.setattr(importing, "apply_changes", outage_then_write)
    with pytest.raises(OperationalError):  # raised to the task (which retries), not recorded as the file's error
        services.run_import(job_id=job.pk)
    connection.close()
    monkeypatch.setattr(importing, "apply_changes", real)

    job.refresh_from_db()
    assert job.status == "running" and job.errors == []
    assert (Annotation.objects.filter(project=project).count(), LabelClass.objects.filter(name="chisel").count()) == (0, 0)
    assert services.run_import(job_id=job.pk) is None  # a plain redelivery leaves a running job alone

    done = services.run_import(job_id=job.pk, resume=True)
    assert done.status == "done", done.errors
    assert done.result["annotations"] == 1 and done.result["classes_created"] == ["chisel"]
    [annotation] = Annotation.objects.filter(project=project)
    assert np.array_equal(geometry.decode(annotation.mask_rle), rect(4, 9, 10, 30))
    assert annotation.label_class.name == "chisel"
    assert AnnotationEvent.objects.filter(annotation_id=annotation.pk).count() == 1


def test_an_import_whose_writes_committed_before_the_outage_is_not_applied_twice(target, admin_user, monkeypatch):
    project, _, _ = target
    job = start(project, admin_user)
    real = importing._write

    def write_then_outage(*args, **kwargs):
        result = real(*args, **kwargs)  # committed
        cut_own_connection()
        return result

    monkeypatch.setattr(importing, "_write", write_then_outage)
    with pytest.raises(OperationalError):
        services.run_import(job_id=job.pk)
    connection.close()
    monkeypatch.setattr(importing, "_write", real)

    job.refresh_from_db()
    assert job.status == "done" and job.result["annotations"] == 1  # committed with the writes
    assert services.run_import(job_id=job.pk, resume=True) is None  # the retry finds it done
    assert Annotation.objects.filter(project=project).count() == 1
    assert LabelClass.objects.filter(project=project, name="chisel").count() == 1


def test_two_runs_of_one_import_apply_it_once(target, admin_user):
    """Two messages for one job (the outbox sent it twice), and both runs took the job back after
    an outage: the one that reaches its write second finds the job done and applies nothing."""
    project, _, _ = target
    job = start(project, admin_user)
    services._claim(ImportJob, job.pk)
    slow = ImportJob.objects.select_related("project").get(pk=job.pk)
    other = []

    def progress(stage, done, total):
        if stage == "checking" and total and done == total and not other:  # the slow run's pass 1 is over
            other.append(services.run_import(job_id=job.pk, resume=True))  # the other run wins

    with pytest.raises(importing.AlreadyApplied):
        importing.apply_import(job=slow, progress=progress)
    assert other[0].status == "done"
    assert Annotation.objects.filter(project=project).count() == 1
    assert LabelClass.objects.filter(project=project, name="chisel").count() == 1
    assert ImportJob.objects.get(pk=job.pk).status == "done"
