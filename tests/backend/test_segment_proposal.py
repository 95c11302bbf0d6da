"""Box → SAM proposes the new object's class from the gallery (the real gpu worker with the tiny
models embeds the crop and matches it), and an idle claim frees the image."""
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from backend.gallery.models import GalleryImage
from backend.gallery.services import upload_exemplars
from backend.images.models import Image
from backend.projects.models import Role

from ..worker import ROOT, stop_worker
from .factories import add_member, make_class, make_image, make_project, make_user, rect_rle, synthetic_png


@pytest.fixture(scope="module")
def segment_worker(django_db_setup, django_db_blocker, tiny_models_config):
    """A real worker on both queues with the tiny models. `--include` names the module of the
    segment task in case jobs/tasks.py does not import it (it must, for production workers)."""
    from backend.config.celery import app

    env = {**os.environ, "RAZMETKA_DB_NAME": connection.settings_dict["NAME"], "RAZMETKA_ML_CONFIG": tiny_models_config}
    node = f"segment-{os.getpid()}-{time.monotonic_ns()}@localhost"
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    log = open(settings.VAR_DIR / "worker-segment.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "backend.config", "worker",
         "-Q", f"{settings.QUEUE_CPU},{settings.QUEUE_GPU},{settings.QUEUE_INTERACTIVE}",
         "--include", "backend.jobs.interactive", "--pool", "solo", "-c", "1", "-n", node, "--loglevel", "INFO",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while not (app.control.ping(destination=[node], timeout=0.5) or []):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_worker(proc)
            raise RuntimeError("segment worker did not start; see var/worker-segment.log")
    yield proc
    stop_worker(proc)


def project_with_image(*, gallery: bool):
    from backend.images.services import upload_images as upload

    owner = make_user(f"owner{time.monotonic_ns()}")
    # Random-weight models score everything low: thresholds at zero let the best class through.
    project = make_project(owner, unknown_threshold=0.0, min_margin=0.0)
    # "anvil" sorts first: an empty gallery must not fall back to it.
    anvil, hammer, wrench = make_class(project, "anvil"), make_class(project, "hammer"), make_class(project, "wrench")
    if gallery:
        for label, seeds in ((hammer, (101, 102)), (wrench, (103,))):
            files = [SimpleUploadedFile(f"{label.name}{s}.png", synthetic_png(s)) for s in seeds]
            upload_exemplars(project=project, user=owner, files=files, class_id=label.pk)
    report = upload(project=project, user=owner, files=[SimpleUploadedFile("img.png", synthetic_png(7))])
    return owner, project, report.created[0], (anvil, hammer, wrench)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_new_box_gets_the_gallery_class_with_top_k_evidence(segment_worker, client_for):
    owner, project, image, (anvil, hammer, wrench) = project_with_image(gallery=True)
    client = client_for(owner)
    response = client.post(f"/api/projects/{project.pk}/images/{image.pk}/segment/", {"box": [4, 4, 40, 36]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mask_rle"]["size"] == [image.height, image.width]
    assert body["gallery_size"] == 3
    exemplars = set(GalleryImage.objects.filter(project=project).values_list("pk", flat=True))
    assert {c["class_id"] for c in body["candidates"]} == {hammer.pk, wrench.pk}
    assert all(c["exemplar_id"] in exemplars for c in body["candidates"])
    scores = [c["score"] for c in body["candidates"]]
    assert scores == sorted(scores, reverse=True)
    # The proposal is the best-ranked class, as a job would choose it.
    assert body["label_class"] == body["candidates"][0]["class_id"]
    assert body["class_name"] == body["candidates"][0]["name"]
    assert body["class_score"] == pytest.approx(body["candidates"][0]["score"], abs=1e-4)

    # The workspace creates the object with that class; it is a person's object, pending review.
    # The proposal token makes the server attach its own copy of the evidence (a client cannot
    # invent candidates); a token works once, for that mask, image and user only.
    assert body["proposal"]
    forged = dict(body["mask_rle"], counts=rect_rle(image.height, image.width, 1, 1, 9, 9)["counts"])
    wrong_mask = client.post(f"/api/projects/{project.pk}/annotations/",
                             {"image": image.pk, "label_class": body["label_class"], "mask_rle": forged,
                              "proposal": body["proposal"]}, format="json")
    assert wrong_mask.status_code == 201 and wrong_mask.json()["candidates"] == []  # and the token is spent
    again = client.post(f"/api/projects/{project.pk}/images/{image.pk}/segment/", {"box": [4, 4, 40, 36]}, format="json").json()
    created = client.post(f"/api/projects/{project.pk}/annotations/",
                          {"image": image.pk, "label_class": again["label_class"], "mask_rle": again["mask_rle"],
                           "proposal": again["proposal"]}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["label_class"] == body["label_class"]
    assert created.json()["class_review"] == "pending"
    assert created.json()["candidates"] == again["candidates"]
    assert created.json()["class_score"] == pytest.approx(again["class_score"])
    replay = client.post(f"/api/projects/{project.pk}/annotations/",
                         {"image": image.pk, "label_class": again["label_class"], "mask_rle": again["mask_rle"],
                          "proposal": again["proposal"]}, format="json")
    assert replay.status_code == 201 and replay.json()["candidates"] == [] and replay.json()["class_score"] is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_empty_gallery_proposes_no_class(segment_worker, client_for):
    owner, project, image, _ = project_with_image(gallery=False)
    response = client_for(owner).post(f"/api/projects/{project.pk}/images/{image.pk}/segment/", {"box": [4, 4, 40, 36]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["label_class"] is None and body["class_name"] is None
    assert body["candidates"] == []
    assert body["gallery_size"] == 0


@pytest.mark.django_db
def test_a_claim_idle_past_its_ttl_is_free(client_for):
    owner = make_user("own")
    project = make_project(owner)
    image = make_image(project)
    idle, other = make_user("idle"), make_user("other")
    add_member(project, idle, Role.REVIEWER)
    add_member(project, other, Role.REVIEWER)
    url = f"/api/projects/{project.pk}/images/{image.pk}/claim/"
    assert client_for(idle).post(url).status_code == 200
    assert client_for(other).post(url).status_code == 409
    # No heartbeat for longer than the TTL (the workspace stops renewing when its user is idle).
    Image.objects.filter(pk=image.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    detail = client_for(other).get(f"/api/projects/{project.pk}/images/{image.pk}/").json()
    assert detail["claimed_by"] is None
    taken = client_for(other).post(url)
    assert taken.status_code == 200 and taken.json()["claimed_by"] == "other"
    # The idle holder's late release cannot take the image back from its new holder.
    assert client_for(idle).delete(url).status_code == 403
    assert Image.objects.get(pk=image.pk).claimed_by == other
