"""The detector's phrase (GroundingDINO's text_threshold pick) is stored on each proposal, shown by
the API and carried by the native format as vlm_class, both ways. Real worker, tiny models."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.annotations.models import Annotation
from backend.images.services import upload_images
from backend.jobs import services
from backend.jobs.models import JobStatus

from .exchange.helpers import export, run_import, zip_upload
from .factories import make_class, make_project
from .test_jobs import build_project, synthetic_png, wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PROMPTS = ["tool", "hammer"]  # words of the tiny models' vocabulary


def test_job_stores_the_phrase_and_native_export_round_trips_it(celery_worker, client_for):
    owner, project, _ = build_project(n_images=2, prompts=PROMPTS)
    job = wait_for_job(services.start_job(project=project, user=owner, images="new").pk)
    assert job.status == JobStatus.DONE, job.error
    annotations = list(Annotation.objects.filter(project=project))
    assert annotations, "the tiny pipeline proposed nothing"
    # text_threshold 0: every prompt token scores above it, so the phrase holds both prompts.
    assert {a.det_phrase for a in annotations} == {"tool hammer"}
    first = annotations[0]
    shown = client_for(owner).get(f"/api/projects/{project.pk}/annotations/{first.pk}/").json()
    assert shown["det_phrase"] == "tool hammer" and shown["det_score"] == first.det_score
    detail = client_for(owner).get(f"/api/projects/{project.pk}/images/{first.image_id}/").json()
    assert {a["det_phrase"] for a in detail["annotations"]} == {"tool hammer"}

    _, zf = export(project, owner, "native", include_pending=True)
    exported = [d for entry in json.loads(zf.read("predictions.json")) for d in entry["detections"]]
    assert exported and {d["vlm_class"] for d in exported} == {"tool hammer"}

    target = make_project(owner, name="copy")
    make_class(target, "hammer"), make_class(target, "wrench")
    upload_images(project=target, user=owner,
                  files=[SimpleUploadedFile(f"img{i}.png", synthetic_png(i)) for i in range(2)])
    imported = run_import(target, owner, "native", zip_upload(zf))
    assert imported.status == "done", imported.errors
    assert imported.result["annotations"] == len(exported)
    assert {a.det_phrase for a in Annotation.objects.filter(project=target)} == {"tool hammer"}
    _, again = export(target, owner, "native", include_pending=True)
    assert [d["vlm_class"] for e in json.loads(again.read("predictions.json")) for d in e["detections"]] \
        == [d["vlm_class"] for d in exported]


def test_text_threshold_picks_the_phrase_and_keeps_the_boxes(celery_worker):
    owner, project, _ = build_project(n_images=1, prompts=PROMPTS)
    low = wait_for_job(services.start_job(project=project, user=owner, images="all").pk)
    boxes = sorted(Annotation.objects.filter(project=project).values_list("bbox", flat=True))
    high = wait_for_job(services.start_job(project=project, user=owner, images="all",
                                           overrides={"text_threshold": 1.0}).pk)
    assert low.status == high.status == JobStatus.DONE, (low.error, high.error)
    after = Annotation.objects.filter(project=project)
    # No token scores above 1.0: before, that cut every box; now the same boxes come, without a phrase.
    assert sorted(after.values_list("bbox", flat=True)) == boxes
    assert {a.det_phrase for a in after} == {""}
