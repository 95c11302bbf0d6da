"""Bad input gets a clear error, loses nothing, and lets no one in. Each bad file is built here."""
import io
import os
import stat
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from backend.images.models import Image

from .factories import image_bytes, make_project, make_user, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_project():
    owner = make_user("uploader")
    return owner, make_project(owner)


def upload(client, project, *files):
    return client.post(f"/api/projects/{project.pk}/images/", {"files": list(files)}, format="multipart")


def test_good_images_are_stored_with_size_hash_and_generated_names(owner_project, client_for):
    owner, project = owner_project
    png = image_bytes(40, 30, (1, 2, 3))
    response = upload(client_for(owner), project, SimpleUploadedFile("../../etc/passwd.png", png),
                      SimpleUploadedFile("b.webp", image_bytes(20, 10, fmt="WEBP")))
    assert response.status_code == 201, response.content
    body = response.json()
    assert [c["width"] for c in body["created"]] == [40, 20] and body["errors"] == []
    stored = Image.objects.get(pk=body["created"][0]["id"])
    assert ".." not in stored.file.name and "passwd" not in stored.file.name
    assert stored.content_type == "image/png"
    file_response = client_for(owner).get(body["created"][0]["file_url"])
    assert file_response.status_code == 200
    assert file_response["Content-Type"] == "image/png"
    assert file_response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(file_response.streaming_content) == png


def test_duplicates_are_reported_not_stored_twice(owner_project, client_for):
    owner, project = owner_project
    png = image_bytes(16, 16)
    first = upload(client_for(owner), project, SimpleUploadedFile("a.png", png)).json()
    second = upload(client_for(owner), project, SimpleUploadedFile("again.png", png))
    assert second.status_code == 200
    assert second.json()["duplicates"] == [{"name": "again.png", "existing_id": first["created"][0]["id"]}]
    assert Image.objects.filter(project=project).count() == 1


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("fake.png", b"this is not an image at all", "not an image"),
        ("empty.png", b"", "empty"),
        ("page.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "markup"),
        ("gif.png", None, "Unsupported image format GIF"),
        ("poly.png", None, "polyglot"),
        ("bomb.png", None, "more pixels than the limit"),
        ("trunc.jpg", None, "could not be decoded"),
    ],
)
def test_bad_files_are_refused_by_name(owner_project, client_for, settings, name, data, message):
    owner, project = owner_project
    if name == "gif.png":
        out = io.BytesIO()
        PILImage.new("RGB", (4, 4)).save(out, format="GIF")
        data = out.getvalue()
    elif name == "poly.png":  # a real PNG with an HTML payload appended
        data = image_bytes(8, 8) + b"<html><script>alert(document.cookie)</script></html>"
    elif name == "bomb.png":  # a tiny file that decodes to a huge canvas
        settings.MAX_IMAGE_PIXELS = 1_000_000
        out = io.BytesIO()
        PILImage.new("1", (1500, 1000)).save(out, format="PNG")
        data = out.getvalue()
        assert len(data) < 10_000
    elif name == "trunc.jpg":
        data = image_bytes(64, 64, fmt="JPEG")[:200]
    good = SimpleUploadedFile("good.png", image_bytes(12, 12, (5, 6, 7)))
    response = upload(client_for(owner), project, SimpleUploadedFile(name, data), good)
    assert response.status_code == 201, response.content
    body = response.json()
    assert [c["original_name"] for c in body["created"]] == ["good.png"], "the good file is kept"
    assert len(body["errors"]) == 1 and body["errors"][0]["name"] == name
    assert message.lower() in body["errors"][0]["error"].lower()
    assert Image.objects.filter(project=project).count() == 1


def test_pixel_bomb_between_one_and_two_times_the_limit_is_refused_too(owner_project, client_for, settings):
    owner, project = owner_project
    settings.MAX_IMAGE_PIXELS = 1_000_000
    out = io.BytesIO()
    PILImage.new("1", (1200, 1000)).save(out, format="PNG")  # 1.2x: Pillow only warns here
    response = upload(client_for(owner), project, SimpleUploadedFile("warn.png", out.getvalue()))
    assert response.status_code == 400
    assert "more pixels than the limit" in response.json()["errors"][0]["error"]


def test_exif_orientation_is_applied(owner_project, client_for):
    owner, project = owner_project
    img = PILImage.new("RGB", (60, 20), (10, 200, 10))
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    response = upload(client_for(owner), project, SimpleUploadedFile("rot.jpg", out.getvalue()))
    created = response.json()["created"][0]
    assert (created["width"], created["height"]) == (20, 60)


def test_zip_upload_keeps_good_entries_and_names_bad_ones(owner_project, client_for):
    owner, project = owner_project
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("photos/a.png", image_bytes(10, 10, (1, 1, 1)))
        zf.writestr("photos/b.jpg", image_bytes(10, 10, (2, 2, 2), fmt="JPEG"))
        zf.writestr("../../evil.png", image_bytes(10, 10, (3, 3, 3)))
        zf.writestr("/abs/evil.png", image_bytes(10, 10, (4, 4, 4)))
        link = zipfile.ZipInfo("photos/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("photos/notes.txt", b"hello")
        zf.writestr("photos/bomb.png", b"\0" * 5_000_000)  # compresses ~1000:1
        zf.writestr("__MACOSX/._a.png", b"junk")
    response = upload(client_for(owner), project, SimpleUploadedFile("batch.zip", buf.getvalue()))
    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted(c["original_name"] for c in body["created"]) == ["batch.zip/photos/a.png", "batch.zip/photos/b.jpg"]
    errors = {e["name"]: e["error"] for e in body["errors"]}
    assert "'..'" in errors["batch.zip/../../evil.png"]
    assert "absolute" in errors["batch.zip//abs/evil.png"]
    assert "symbolic link" in errors["batch.zip/photos/link.png"]
    assert "not an image" in errors["batch.zip/photos/notes.txt"].lower()
    assert "compression ratio" in errors["batch.zip/photos/bomb.png"]
    assert not any("MACOSX" in name for name in errors)
    assert Image.objects.filter(project=project).count() == 2


def test_zip_with_too_many_entries_is_refused(owner_project, client_for, settings):
    owner, project = owner_project
    settings.ZIP_MAX_ENTRIES = 3
    data = zip_bytes({f"{i}.png": image_bytes(4, 4, (i, i, i)) for i in range(5)})
    response = upload(client_for(owner), project, SimpleUploadedFile("many.zip", data))
    assert response.status_code == 400
    assert "limit is 3" in response.json()["errors"][0]["error"]
    assert Image.objects.filter(project=project).count() == 0


def test_zip_total_size_limit(owner_project, client_for, settings):
    owner, project = owner_project
    entries = {f"{i}.png": image_bytes(30, 30, (i, 0, 0)) for i in range(4)}
    settings.ZIP_MAX_TOTAL_BYTES = len(entries["0.png"]) + len(entries["1.png"])
    response = upload(client_for(owner), project, SimpleUploadedFile("big.zip", zip_bytes(entries, compression=zipfile.ZIP_STORED)))
    body = response.json()
    assert len(body["created"]) == 2
    assert all("total size limit" in e["error"] for e in body["errors"]) and len(body["errors"]) == 2


def test_oversized_request_is_refused_before_reading(owner_project, client_for, settings):
    owner, project = owner_project
    settings.MAX_UPLOAD_BYTES = 1000
    noise = PILImage.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    response = upload(client_for(owner), project, SimpleUploadedFile("a.png", out.getvalue()))
    assert response.status_code == 413
    assert "MAX_UPLOAD_BYTES" in response.json()["detail"]


def test_non_allowlisted_filters_and_orderings_are_refused(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    for query in ("owner__password=x", "project__memberships__user__password__startswith=p", "ordering=uploaded_by__password"):
        response = client.get(f"/api/projects/{project.pk}/images/?{query}")
        assert response.status_code == 400, query
        assert "Allowed" in str(response.json())
    assert client.get(f"/api/projects/{project.pk}/images/?status=bogus").status_code == 400
    assert client.get(f"/api/projects/{project.pk}/images/?status=new&ordering=-created_at").status_code == 200


def test_gallery_imagefolder_zip_creates_classes(owner_project, client_for):
    from backend.gallery.models import GalleryImage
    from backend.projects.models import LabelClass

    owner, project = owner_project
    data = zip_bytes({
        "dataset/1_screw_flat/a.png": image_bytes(8, 8, (1, 0, 0)),
        "dataset/1_screw_flat/b.png": image_bytes(8, 8, (2, 0, 0)),
        "dataset/6_pliers/c.jpg": image_bytes(8, 8, (3, 0, 0), fmt="JPEG"),
        "dataset/loose.png": image_bytes(8, 8, (4, 0, 0)),
    })
    response = client_for(owner).post(f"/api/projects/{project.pk}/gallery/", {"files": [SimpleUploadedFile("g.zip", data)]}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted(body["created_classes"]) == ["1_screw_flat", "6_pliers"]
    assert len(body["created"]) == 3
    assert len(body["errors"]) == 1 and "no class" in body["errors"][0]["error"]
    counts = {c.name: c.exemplars.count() for c in LabelClass.objects.filter(project=project)}
    assert counts == {"1_screw_flat": 2, "6_pliers": 1}
    assert GalleryImage.objects.filter(project=project).count() == 3
