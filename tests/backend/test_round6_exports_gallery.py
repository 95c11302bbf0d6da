"""Round 6: exports can no longer fill the disk (DELETE, one at a time per project, retention),
gallery zips are stored one entry at a time and capped in new classes, and an exemplar whose
bytes another class already has is reported."""
import io
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from backend.exchange import services
from backend.exchange.models import ExportJob
from backend.gallery import services as gallery_services
from backend.gallery.models import GalleryImage
from backend.projects.models import LabelClass

from .exchange.helpers import build_project, export, populate, run_here
from .factories import add_member, image_bytes, make_class, make_project, make_user, zip_bytes

pytestmark = pytest.mark.django_db


def _project_with_objects(owner):
    project, classes, images = build_project(owner)
    populate(project, classes, images)
    return project


def _files_under(folder: str) -> list[str]:
    if not default_storage.exists(folder):
        return []
    return default_storage.listdir(folder)[1]


# --------------------------------------------------------------------------- F2: DELETE


def test_an_admin_deletes_an_export_and_its_file(admin_user, client_for, django_capture_on_commit_callbacks):
    project = _project_with_objects(admin_user)
    job, _ = export(project, admin_user, include_images=True)
    assert default_storage.exists(job.result_file)
    base = f"/api/projects/{project.pk}/exports/{job.pk}/"
    viewer, annotator = make_user("vic"), make_user("ann")
    add_member(project, viewer, "viewer")
    add_member(project, annotator, "annotator")
    assert client_for(viewer).delete(base).status_code == 403  # who may not start exports may not delete them
    assert client_for(annotator).delete(base).status_code == 403
    assert client_for(make_user("mallory")).delete(base).status_code == 404
    assert default_storage.exists(job.result_file)

    client = client_for(admin_user)
    with run_here(), django_capture_on_commit_callbacks(execute=True):  # the file goes once the row's delete commits
        response = client.delete(base)
    assert response.status_code == 204, response.content
    assert not default_storage.exists(job.result_file)
    assert not ExportJob.objects.filter(pk=job.pk).exists()
    assert client.get(base).status_code == 404
    assert client.delete(base).status_code == 404


def test_deleting_a_queued_export_cancels_it(admin_user, client_for):
    project = _project_with_objects(admin_user)
    with run_here():
        job = services.start_export(project=project, user=admin_user, format="coco")
        assert client_for(admin_user).delete(f"/api/projects/{project.pk}/exports/{job.pk}/").status_code == 204
    assert services.run_export(job_id=job.pk) is None  # its task finds no job
    assert _files_under(f"exports/{project.pk}") == []


def test_deleting_a_running_export_stops_it_and_keeps_nothing(admin_user, monkeypatch):
    project = _project_with_objects(admin_user)
    real = services._export_progress
    with run_here():
        job = services.start_export(project=project, user=admin_user, format="coco", include_images=True)

    def deleted_while_running(job, done, total):
        if ExportJob.objects.filter(pk=job.pk).exists():
            services.delete_export(project=project, job_id=job.pk)
        real(job, done, total)

    monkeypatch.setattr(services, "_export_progress", deleted_while_running)
    assert services.run_export(job_id=job.pk) is None
    assert not ExportJob.objects.filter(pk=job.pk).exists()
    assert _files_under(f"exports/{project.pk}") == []


# --------------------------------------------------------------------------- F2: one at a time


def test_a_second_export_while_one_is_queued_or_running_is_a_409_naming_it(admin_user, client_for):
    project = _project_with_objects(admin_user)
    client = client_for(admin_user)
    url = f"/api/projects/{project.pk}/exports/"
    with run_here():
        first = client.post(url, {"format": "coco", "include_images": True}, format="json")
        assert first.status_code == 202, first.content
        first_id = first.json()["id"]
        second = client.post(url, {"format": "yolo", "include_images": True}, format="json")
        assert second.status_code == 409, second.content
        body = second.json()
        assert body["export_id"] == first_id and f"Export {first_id}" in body["detail"] and "queued" in body["detail"]
        ExportJob.objects.filter(pk=first_id).update(status="running")
        third = client.post(url, {"format": "yolo"}, format="json")
        assert third.status_code == 409 and "running" in third.json()["detail"]
        assert ExportJob.objects.filter(project=project).count() == 1
        # Another project is not held up.
        other = _project_with_objects(admin_user)
        assert client.post(f"/api/projects/{other.pk}/exports/", {"format": "coco"}, format="json").status_code == 202
    # Once it has finished, the next one starts.
    services.run_export(job_id=first_id, resume=True)
    with run_here():
        assert client.post(url, {"format": "yolo"}, format="json").status_code == 202


# --------------------------------------------------------------------------- F2: retention


def test_only_the_newest_exports_keep_their_files(admin_user, client_for, settings):
    settings.EXPORTS_KEPT_PER_PROJECT = 2
    project = _project_with_objects(admin_user)
    jobs = [export(project, admin_user, include_images=True)[0] for _ in range(3)]
    old, kept = jobs[0], jobs[1:]
    old_file = old.result_file
    old.refresh_from_db()
    assert old.expired_at is not None and old.result_file == ""
    assert old_file and not default_storage.exists(old_file)
    for job in kept:
        job.refresh_from_db()
        assert job.expired_at is None and default_storage.exists(job.result_file)
    assert len(_files_under(f"exports/{project.pk}")) == 2

    client = client_for(admin_user)
    base = f"/api/projects/{project.pk}/exports/"
    detail = client.get(f"{base}{old.pk}/").json()
    assert detail["status"] == "done" and detail["expired"] is True and detail["download_url"] is None
    response = client.get(f"{base}{old.pk}/download/")
    assert response.status_code == 410
    assert "removed" in response.json()["detail"] and "newest 2" in response.json()["detail"]
    listed = {j["id"]: j for j in client.get(base).json()["results"]}
    assert listed[kept[0].pk]["expired"] is False and listed[kept[0].pk]["download_url"]
    assert client.get(f"{base}{kept[0].pk}/download/").status_code == 200
    # An expired row can still be deleted (its record goes).
    assert client.delete(f"{base}{old.pk}/").status_code == 204


def test_the_retention_default_is_five():
    from django.conf import settings

    assert settings.EXPORTS_KEPT_PER_PROJECT == int(os.environ.get("EXPORTS_KEPT_PER_PROJECT", 5))


# --------------------------------------------------------------------------- F4: one entry at a time


def _noise_png(seed: int, side: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _zip_upload(entries: dict[str, bytes], name="g.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, zip_bytes(entries, compression=zipfile.ZIP_STORED), content_type="application/zip")


def test_a_gallery_zip_is_validated_and_stored_one_entry_at_a_time(admin_user, monkeypatch):
    """Every validated entry was kept in a list first (a 25 MB zip of big PNGs took a web process
    to 1.6 GB): an entry is now stored before the next one is read."""
    project = make_project(admin_user, name="Lazy")
    pulled = []
    real_iter, real_store = gallery_services.iter_upload_items, gallery_services._store_exemplar

    def counting(files, **kwargs):
        for item in real_iter(files, **kwargs):
            pulled.append(item.name)
            yield item

    stored_after = []

    def store(**kwargs):
        stored_after.append(len(pulled))
        return real_store(**kwargs)

    monkeypatch.setattr(gallery_services, "iter_upload_items", counting)
    monkeypatch.setattr(gallery_services, "_store_exemplar", store)
    entries = {f"hammer/{i}.png": image_bytes(40, 40, (i, 9, 9)) for i in range(6)}
    report = gallery_services.upload_exemplars(project=project, user=admin_user, files=[_zip_upload(entries)],
                                               class_id=None)
    assert len(report.created) == 6 and report.created_classes == ["hammer"]
    assert stored_after == [1, 2, 3, 4, 5, 6]


def test_gallery_zip_memory_does_not_grow_with_the_entries(admin_user):
    project = make_project(admin_user, name="Flat")
    side = 500  # ~750 KB of noise per PNG
    entry = len(_noise_png(0, side))

    def peak(n: int, folder: str) -> int:
        upload = _zip_upload({f"{folder}/{i}.png": _noise_png(i + (100 if folder == "b" else 0), side)
                              for i in range(n)})
        tracemalloc.start()
        try:
            report = gallery_services.upload_exemplars(project=project, user=admin_user, files=[upload], class_id=None)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert len(report.created) == n, report.errors

    small, big = peak(2, "a"), peak(12, "b")
    # Ten more entries held at once would add ~10 entries' bytes (plus their thumbnails).
    assert big < small + 3 * entry, (small, big, entry)


# --------------------------------------------------------------------------- F10: class cap


def test_an_imagefolder_zip_with_too_many_new_classes_is_refused_before_anything_is_created(
        admin_user, client_for, monkeypatch):
    import backend.exchange.importing as importing

    monkeypatch.setattr(importing, "MAX_NEW_CLASSES", 3)  # the imports' cap (1000) is the one applied
    project = make_project(admin_user, name="Cap")
    make_class(project, "hammer")  # an existing class is no new class
    client = client_for(admin_user)
    entries = {f"{name}/a.png": image_bytes(30, 30, (i, 2, 3))
               for i, name in enumerate(["hammer", "c1", "c2", "c3", "c4"])}
    response = client.post(f"/api/projects/{project.pk}/gallery/", {"files": [_zip_upload(entries)]}, format="multipart")
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert "4 folders" in detail and "at most 3 new classes" in detail
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["hammer"]
    assert not GalleryImage.objects.filter(project=project).exists()

    del entries["c4/a.png"]  # 3 new classes: allowed
    response = client.post(f"/api/projects/{project.pk}/gallery/", {"files": [_zip_upload(entries)]}, format="multipart")
    assert response.status_code == 201, response.content
    assert sorted(response.json()["created_classes"]) == ["c1", "c2", "c3"]


# --------------------------------------------------------------------------- UI-10: same bytes, two classes


def test_an_exemplar_that_another_class_already_has_is_reported(admin_user, client_for):
    project = make_project(admin_user, name="Twice")
    hammer, wrench = make_class(project, "hammer"), make_class(project, "wrench")
    client = client_for(admin_user)
    url = f"/api/projects/{project.pk}/gallery/"
    same = image_bytes(40, 40, (5, 6, 7))
    first = client.post(url, {"files": [SimpleUploadedFile("h.png", same)], "label_class": hammer.pk},
                        format="multipart")
    assert first.status_code == 201 and first.json()["also_in"] == []
    hammer_exemplar = first.json()["created"][0]["id"]
    second = client.post(url, {"files": [SimpleUploadedFile("w.png", same),
                                         SimpleUploadedFile("other.png", image_bytes(40, 40, (8, 8, 8)))],
                               "label_class": wrench.pk}, format="multipart")
    assert second.status_code == 201, second.content
    body = second.json()
    assert len(body["created"]) == 2  # added (a warning, not a refusal)
    assert body["also_in"] == [{
        "name": "w.png", "id": body["created"][0]["id"], "class_name": "wrench",
        "also_in": [{"class_id": hammer.pk, "class_name": "hammer", "exemplar_id": hammer_exemplar}],
    }]


def test_an_imagefolder_zip_with_one_picture_in_two_folders_is_reported(admin_user, client_for):
    project = make_project(admin_user, name="Twice2")
    same = image_bytes(40, 40, (1, 1, 1))
    response = client_for(admin_user).post(
        f"/api/projects/{project.pk}/gallery/",
        {"files": [_zip_upload({"hammer/a.png": same, "wrench/b.png": same})]}, format="multipart")
    assert response.status_code == 201, response.content
    (warning,) = response.json()["also_in"]
    assert warning["name"] == "g.zip/wrench/b.png" and [c["class_name"] for c in warning["also_in"]] == ["hammer"]
