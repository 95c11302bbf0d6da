import io
import json
import time
import zipfile

import pytest

from backend.annotations.models import Annotation
from backend.exchange.models import ExportJob, ImportJob

from ..factories import add_member, make_user
from .helpers import build_project, json_upload, populate


def wait_for(model, pk, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = model.objects.get(pk=pk)
        if job.status in {"done", "failed"}:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{model.__name__} {pk} still {job.status} after {timeout}s")


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_export_and_import_end_to_end_through_the_worker(celery_worker, admin_user, client_for):
    project, classes, images = build_project(admin_user)
    populate(project, classes, images)
    client = client_for(admin_user)
    response = client.post(f"/api/projects/{project.pk}/exports/",
                           {"format": "coco", "segmentation": "polygon", "include_images": True}, format="json")
    assert response.status_code == 202, response.content
    job = wait_for(ExportJob, response.json()["id"])
    assert job.status == "done", job.error
    detail = client.get(f"/api/projects/{project.pk}/exports/{job.pk}/").json()
    # The third image has nothing approved: the default export leaves it out.
    assert detail["progress"] == {"done": 2, "total": 2} and detail["download_url"]
    response = client.get(detail["download_url"])
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert {"annotations/instances.json", "images/img1.png"} <= set(archive.namelist())
    doc = json.loads(archive.read("annotations/instances.json"))

    dst, _, _ = build_project(admin_user, name="Dst", with_classes=False)
    upload = json_upload(doc, "instances.json")
    response = client.post(f"/api/projects/{dst.pk}/imports/",
                           {"file": upload, "format": "coco", "as_accepted": "true", "create_missing_classes": "true"},
                           format="multipart")
    assert response.status_code == 202, response.content
    job = wait_for(ImportJob, response.json()["id"])
    assert job.status == "done", job.errors
    body = client.get(f"/api/projects/{dst.pk}/imports/{job.pk}/").json()
    assert body["result"]["annotations"] == 4 and sorted(body["result"]["classes_created"]) == ["hammer", "wrench"]
    assert Annotation.objects.filter(project=dst, class_review="accepted").count() == 4
    assert client.get(f"/api/projects/{dst.pk}/imports/").json()["count"] == 1


@pytest.mark.django_db
def test_non_member_gets_404_everywhere(admin_user, client_for):
    project, classes, images = build_project(admin_user)
    export = ExportJob.objects.create(project=project, created_by=admin_user, format="coco", status="done",
                                      result_file="exports/x.zip")
    imp = ImportJob.objects.create(project=project, created_by=admin_user, format="coco")
    stranger = client_for(make_user("mallory"))
    base = f"/api/projects/{project.pk}"
    for url in [f"{base}/exports/", f"{base}/exports/{export.pk}/", f"{base}/exports/{export.pk}/download/",
                f"{base}/imports/", f"{base}/imports/{imp.pk}/"]:
        assert stranger.get(url).status_code == 404, url
    assert stranger.post(f"{base}/exports/", {"format": "coco"}, format="json").status_code == 404
    assert stranger.post(f"{base}/imports/", {"format": "coco", "file": json_upload({})},
                         format="multipart").status_code == 404
    # Another project's job through a project the user belongs to is 404 as well.
    other, _, _ = build_project(make_user("bob"), name="Other")
    add_member(other, admin_user, "admin")
    assert client_for(admin_user).get(f"/api/projects/{other.pk}/exports/{export.pk}/").status_code == 404


@pytest.mark.django_db
def test_roles(admin_user, client_for):
    project, classes, images = build_project(admin_user)
    base = f"/api/projects/{project.pk}"
    viewer, annotator = make_user("vera"), make_user("anna")
    add_member(project, viewer, "viewer")
    add_member(project, annotator, "annotator")
    as_viewer, as_annotator = client_for(viewer), client_for(annotator)
    assert as_viewer.post(f"{base}/exports/", {"format": "coco"}, format="json").status_code == 403
    assert as_viewer.post(f"{base}/imports/", {"format": "coco", "file": json_upload({})}, format="multipart").status_code == 403
    assert as_annotator.post(f"{base}/exports/", {"format": "coco"}, format="json").status_code == 403
    response = as_annotator.post(f"{base}/imports/", {"format": "coco", "file": json_upload({}), "create_missing_classes": "true"},
                                 format="multipart")
    assert response.status_code == 403 and "create classes" in response.json()["detail"]
    # Importing as accepted would approve objects without a review.
    response = as_annotator.post(f"{base}/imports/", {"format": "coco", "file": json_upload({}), "as_accepted": "true"},
                                 format="multipart")
    assert response.status_code == 403 and "as accepted" in response.json()["detail"]
    assert as_annotator.post(f"{base}/imports/", {"format": "coco", "file": json_upload({})}, format="multipart").status_code == 202
    assert as_viewer.get(f"{base}/exports/").status_code == 200
    job = ExportJob.objects.create(project=project, format="coco")
    assert as_viewer.get(f"{base}/exports/{job.pk}/download/").status_code == 404  # not done yet
    response = client_for(admin_user).post(f"{base}/exports/", {"format": "coco", "image_ids": [999999]}, format="json")
    assert response.status_code == 400 and "999999" in response.json()["detail"]
    response = client_for(admin_user).post(f"{base}/exports/", {"format": "pascal"}, format="json")
    assert response.status_code == 400
