"""Thumbnails: made once at upload, served to members only, cacheable, made lazily for old images."""
import io

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image as PILImage

from backend.images.models import Image

from .factories import add_member, image_bytes, make_image, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_project():
    owner = make_user("thumbs")
    return owner, make_project(owner)


def thumb_url(image) -> str:
    return f"/api/projects/{image.project_id}/images/{image.pk}/thumbnail/"


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_thumbnail_is_made_at_upload_and_served_small_with_cache_headers(owner_project, client_for):
    owner, project = owner_project
    image = make_image(project, width=1200, height=800, seed=1)
    assert image.thumbnail.startswith(f"projects/{project.pk}/thumbs/") and default_storage.exists(image.thumbnail)
    response = client_for(owner).get(thumb_url(image))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"].startswith("private")
    etag = response["ETag"]
    with PILImage.open(io.BytesIO(body(response))) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (256, 171)
    again = client_for(owner).get(thumb_url(image), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag


def test_list_rows_carry_the_thumbnail_url(owner_project, client_for):
    owner, project = owner_project
    image = make_image(project, seed=2)
    rows = client_for(owner).get(f"/api/projects/{project.pk}/images/").json()["results"]
    assert rows[0]["thumbnail_url"].startswith(thumb_url(image))


def test_only_members_get_thumbnails(owner_project, client_for):
    owner, project = owner_project
    image = make_image(project, seed=3)
    viewer, stranger = make_user("viewer"), make_user("stranger")
    add_member(project, viewer, "viewer")
    assert client_for(viewer).get(thumb_url(image)).status_code == 200
    assert client_for(stranger).get(thumb_url(image)).status_code == 404
    assert client_for(None).get(thumb_url(image)).status_code in (401, 403)
    other = make_project(stranger, name="Other")
    assert client_for(stranger).get(f"/api/projects/{other.pk}/images/{image.pk}/thumbnail/").status_code == 404


def test_an_image_without_a_thumbnail_gets_one_on_first_request(owner_project, client_for):
    owner, project = owner_project
    image = make_image(project, width=300, height=900, seed=4)
    default_storage.delete(image.thumbnail)
    Image.objects.filter(pk=image.pk).update(thumbnail="")  # as stored before thumbnails existed
    response = client_for(owner).get(thumb_url(image))
    assert response.status_code == 200
    with PILImage.open(io.BytesIO(body(response))) as thumb:
        assert thumb.size == (85, 256)
    image.refresh_from_db()
    assert image.thumbnail and default_storage.exists(image.thumbnail)
    assert image.version == 1, "making a thumbnail is not an edit"


def test_management_command_backfills_missing_thumbnails(owner_project):
    owner, project = owner_project
    images = [make_image(project, seed=10 + i) for i in range(3)]
    Image.objects.filter(pk__in=[i.pk for i in images[:2]]).update(thumbnail="")
    out = io.StringIO()
    call_command("make_thumbnails", stdout=out)
    assert "2 thumbnails made" in out.getvalue()
    assert not Image.objects.filter(project=project, thumbnail="").exists()


def test_transparent_and_rotated_images_get_upright_flat_thumbnails(owner_project, client_for):
    owner, project = owner_project
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.images.services import upload_images

    rgba = PILImage.new("RGBA", (40, 20), (255, 0, 0, 0))
    png = io.BytesIO()
    rgba.save(png, format="PNG")
    exif = PILImage.Exif()
    exif[0x0112] = 6
    rotated = io.BytesIO()
    PILImage.new("RGB", (60, 20), (0, 200, 0)).save(rotated, format="JPEG", exif=exif)
    report = upload_images(project=project, user=owner, files=[
        SimpleUploadedFile("clear.png", png.getvalue()), SimpleUploadedFile("rot.jpg", rotated.getvalue()),
    ])
    clear, rot = report.created
    with default_storage.open(clear.thumbnail) as fh, PILImage.open(fh) as thumb:
        assert thumb.mode == "RGB" and thumb.getpixel((5, 5)) >= (250, 250, 250), "transparency on white"
    with default_storage.open(rot.thumbnail) as fh, PILImage.open(fh) as thumb:
        assert thumb.size == (20, 60), "upright, like the stored image"


def test_upright_uploads_are_stored_byte_for_byte(owner_project):
    owner, project = owner_project
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.images.services import upload_images

    jpeg = image_bytes(64, 48, fmt="JPEG", quality=70)
    [image] = upload_images(project=project, user=owner, files=[SimpleUploadedFile("a.jpg", jpeg)]).created
    with default_storage.open(image.file.name) as fh:
        assert fh.read() == jpeg, "no re-encoding when there is nothing to rotate"


def test_deleting_an_image_deletes_its_thumbnail(owner_project, django_capture_on_commit_callbacks):
    from backend.images.services import delete_image

    owner, project = owner_project
    image = make_image(project, seed=5)
    with django_capture_on_commit_callbacks(execute=True):
        delete_image(project=project, image_id=image.pk, version=image.api_version)
    assert not default_storage.exists(image.thumbnail) and not default_storage.exists(image.file.name)
