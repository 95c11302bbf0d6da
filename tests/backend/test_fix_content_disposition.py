"""Downloads of non-ASCII names: an ASCII `filename=` plus RFC 5987 `filename*=`, never the whole
header MIME-encoded by Django (=?utf-8?b?...?=), and attachment/inline as each route intends."""
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.core.files import content_disposition
from backend.exchange.models import ExportJob

from .factories import image_bytes, make_class, make_project, make_user

pytestmark = pytest.mark.django_db

CYRILLIC_PROJECT = "attachment; filename=\"Proekt-coco-export-{pk}.zip\"; filename*=UTF-8''%D0%9F%D1%80%D0%BE%D0%B5%D0%BA%D1%82-coco-export-{pk}.zip"


def test_header_values_are_ascii_with_a_utf8_filename_star():
    assert content_disposition("Проект-yolo-export-14.zip", attachment=True) == (
        "attachment; filename=\"Proekt-yolo-export-14.zip\"; "
        "filename*=UTF-8''%D0%9F%D1%80%D0%BE%D0%B5%D0%BA%D1%82-yolo-export-14.zip")
    assert content_disposition("снимок 1.png") == (
        "inline; filename=\"snimok 1.png\"; filename*=UTF-8''%D1%81%D0%BD%D0%B8%D0%BC%D0%BE%D0%BA%201.png")
    assert content_disposition("P1-coco-export-1.zip", attachment=True) == 'attachment; filename="P1-coco-export-1.zip"'
    # Nothing transliterable: a generic ASCII name, the real one in filename*.
    assert content_disposition("图片.png") == "inline; filename=\"file.png\"; filename*=UTF-8''%E5%9B%BE%E7%89%87.png"
    # Quotes, semicolons and path parts never reach the header.
    assert content_disposition('../a";b.png') == 'inline; filename="..ab.png"'


def test_export_of_a_cyrillic_project_downloads_as_attachment(client_for):
    owner = make_user("exporter")
    project = make_project(owner, name="Проект")
    stored = default_storage.save("exports/fix-cd.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18))
    job = ExportJob.objects.create(project=project, created_by=owner, format="coco", status="done", result_file=stored)
    response = client_for(owner).get(f"/api/projects/{project.pk}/exports/{job.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == CYRILLIC_PROJECT.format(pk=job.pk)
    ascii_project = make_project(owner, name="P1")
    job2 = ExportJob.objects.create(project=ascii_project, created_by=owner, format="coco", status="done", result_file=stored)
    response = client_for(owner).get(f"/api/projects/{ascii_project.pk}/exports/{job2.pk}/download/")
    assert response["Content-Disposition"] == f'attachment; filename="P1-coco-export-{job2.pk}.zip"'


def test_image_and_gallery_files_with_cyrillic_names_stay_inline(client_for):
    owner = make_user("viewer-cd")
    project = make_project(owner)
    upload = client_for(owner).post(
        f"/api/projects/{project.pk}/images/", {"files": [SimpleUploadedFile("снимок 1.png", image_bytes(20, 10))]},
        format="multipart")
    assert upload.status_code == 201, upload.content
    response = client_for(owner).get(upload.json()["created"][0]["file_url"])
    assert response.status_code == 200
    expected = "inline; filename=\"snimok 1.png\"; filename*=UTF-8''%D1%81%D0%BD%D0%B8%D0%BC%D0%BE%D0%BA%201.png"
    assert response["Content-Disposition"] == expected
    label_class = make_class(project, "hammer")
    gallery = client_for(owner).post(
        f"/api/projects/{project.pk}/gallery/",
        {"files": [SimpleUploadedFile("снимок 1.png", image_bytes(20, 10))], "label_class": label_class.pk},
        format="multipart")
    assert gallery.status_code == 201, gallery.content
    exemplar = gallery.json()["created"][0]["id"]
    response = client_for(owner).get(f"/api/projects/{project.pk}/gallery/{exemplar}/file/")
    assert response.status_code == 200 and response["Content-Disposition"] == expected
