"""A TIFF (uploads accept it; browsers cannot draw it) reaches the review page as a PNG of the same
pixels; the stored file and plain downloads stay the uploaded bytes."""
import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from backend.images.services import upload_images

from .factories import make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def _tiff(mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).convert(mode).save(out, format="TIFF")
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "CMYK"])
def test_a_tiff_is_drawn_from_a_png_of_its_pixels(client_for, mode):
    owner = make_user("owner")
    project = make_project(owner)
    data = _tiff(mode)
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile("scan.tiff", data)]).created[0]
    url = f"/api/projects/{project.pk}/images/{image.pk}/file/"
    shown = client_for(owner).get(url + "?display=1")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    assert shown["Content-Security-Policy"] == "default-src 'none'; sandbox"
    with PILImage.open(io.BytesIO(b"".join(shown.streaming_content))) as png, PILImage.open(io.BytesIO(data)) as tiff:
        want = tiff.convert("RGBA" if mode == "RGBA" else "RGB")
        assert np.array_equal(np.asarray(png.convert(want.mode)), np.asarray(want))
    original = client_for(owner).get(url)
    assert original["Content-Type"] == "image/tiff" and b"".join(original.streaming_content) == data
    assert client_for(make_user("outsider")).get(url + "?display=1").status_code == 404


def test_formats_browsers_draw_are_sent_as_stored(client_for):
    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project)
    shown = client_for(owner).get(f"/api/projects/{project.pk}/images/{image.pk}/file/?display=1")
    assert shown["Content-Type"] == "image/png"
    assert b"".join(shown.streaming_content) == image.file.open("rb").read()


def _high_bit(kind: str) -> tuple[str, bytes, np.ndarray]:
    """A scan with a bright left half and a dimmer right half, as (name, file bytes, raw values)."""
    values = np.zeros((40, 60), dtype=np.float64)
    values[:, :30], values[:, 30:] = 4095, 2000  # a 12-bit scan
    out = io.BytesIO()
    if kind == "tiff16":
        PILImage.fromarray(values.astype(np.uint16)).save(out, format="TIFF")
    elif kind == "png16":
        PILImage.fromarray(values.astype(np.uint16)).save(out, format="PNG")
    elif kind == "tiff32":
        values *= 1000
        PILImage.fromarray(values.astype(np.int32)).save(out, format="TIFF")
    elif kind == "unit_float":  # 0..0.5: black everywhere before (round 12)
        values = values / 4095 * 0.5
        PILImage.fromarray(values.astype(np.float32)).save(out, format="TIFF")
    else:  # float, with negatives
        values = values / 4095 * 1000 - 500
        PILImage.fromarray(values.astype(np.float32)).save(out, format="TIFF")
    return f"scan-{kind}.{'png' if kind == 'png16' else 'tiff'}", out.getvalue(), values


@pytest.mark.parametrize("kind", ["tiff16", "png16", "tiff32", "float", "unit_float"])
def test_a_high_bit_scan_looks_on_the_review_page_as_the_models_and_the_thumbnail_see_it(client_for, kind):
    """A 12-bit TIFF showed almost black (value / 256), a 32-bit one all white and a float one
    clipped, and a 16-bit PNG was drawn by the browser from its high byte, while the models and
    the thumbnail scale by the brightest value (round 11)."""
    from ml.inputs import to_uint8

    owner = make_user("owner")
    project = make_project(owner)
    name, data, values = _high_bit(kind)
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile(name, data)]).created[0]
    shown = client_for(owner).get(f"/api/projects/{project.pk}/images/{image.pk}/file/?display=1")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    with PILImage.open(io.BytesIO(b"".join(shown.streaming_content))) as png:
        page = np.asarray(png.convert("L")).astype(int)
    models = to_uint8(values).astype(int)
    assert np.abs(page - models).max() <= 1, (page[0, 0], page[0, -1], models[0, 0], models[0, -1])
    if kind == "unit_float":
        assert 120 <= page[0, 0] <= 130 and 55 <= page[0, -1] <= 65, (page[0, 0], page[0, -1])
    elif kind == "float":
        assert page[0, 0] > page[0, -1]
    else:
        assert page[0, 0] >= 250 and 100 < page[0, -1] < 160
    thumb = client_for(owner).get(f"/api/projects/{project.pk}/images/{image.pk}/thumbnail/")
    with PILImage.open(io.BytesIO(b"".join(thumb.streaming_content) if thumb.streaming else thumb.content)) as jpeg:
        small = np.asarray(jpeg.convert("L")).astype(int)
    assert abs(small[5, 5] - models[0, 0]) <= 6 and abs(small[5, -5] - models[0, -1]) <= 6


@pytest.mark.parametrize("fmt, name", [("PNG", "anim.png"), ("WEBP", "anim.webp")])
def test_an_animation_is_drawn_from_its_first_frame(client_for, fmt, name):
    """Black-box round 16: an APNG or animated WebP was sent to the page as stored, and a browser
    plays it, while width/height, the models and the masks are of its first frame."""
    owner = make_user("owner")
    project = make_project(owner)
    first = np.zeros((30, 40, 3), np.uint8)
    first[:10, :10] = (255, 0, 0)
    second = np.zeros((30, 40, 3), np.uint8)
    second[20:, 30:] = (0, 0, 255)
    out = io.BytesIO()
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    PILImage.fromarray(first).save(out, format=fmt, save_all=True, append_images=[PILImage.fromarray(second)],
                                   duration=200, loop=0, **kwargs)
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile(name, out.getvalue())]).created[0]
    url = f"/api/projects/{project.pk}/images/{image.pk}/file/"
    shown = client_for(owner).get(url + "?display=1")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    with PILImage.open(io.BytesIO(b"".join(shown.streaming_content))) as png:
        assert getattr(png, "n_frames", 1) == 1 and not getattr(png, "is_animated", False)
        assert np.array_equal(np.asarray(png.convert("RGB")), first)
    original = client_for(owner).get(url)  # the download stays the uploaded animation
    assert b"".join(original.streaming_content) == out.getvalue()


def test_a_damaged_file_shown_for_display_is_a_plain_422(client_for):
    """Black-box round 16b: ?display=1 on a TIFF (or an animation) whose stored file was damaged
    answered an HTML 500 with a traceback; the rendition of 'x.tiff' downloaded as 'x.tiff.png'."""
    from pathlib import Path

    from django.core.files.storage import default_storage

    owner = make_user("owner")
    project = make_project(owner)
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile("scan.tiff", _tiff())]).created[0]
    url = f"/api/projects/{project.pk}/images/{image.pk}/file/"
    shown = client_for(owner).get(url + "?display=1")
    assert shown["Content-Disposition"].endswith('filename="scan.png"'), shown["Content-Disposition"]
    # Damaged before its rendition was made (one made earlier is served as it was).
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile("scan.tiff", _tiff("L"))]).created[0]
    url = f"/api/projects/{project.pk}/images/{image.pk}/file/"
    path = Path(default_storage.path(image.file.name))
    path.write_bytes(path.read_bytes()[:60])
    broken = client_for(owner).get(url + "?display=1")
    assert broken.status_code == 422 and broken["Content-Type"] == "application/json", broken.content[:200]
    assert broken.json()["code"] == "image_unreadable"
    assert broken.json()["detail"].startswith("Could not read the image 'scan.tiff': the stored file"), broken.json()
    for query in ("page=2", "page_size=5", "display=1&display=1"):
        refused = client_for(owner).get(f"{url}?{query}")
        assert refused.status_code == 400 and "comma" not in refused.content.decode(), (query, refused.content)


def test_the_rendition_is_made_once_and_goes_with_the_image(client_for, django_capture_on_commit_callbacks):
    """The PNG was rebuilt at every ?display=1 (1.4 s a 6 MP TIFF, 7-19 s a 100 MP APNG, each time
    the review page opened the image): it is stored at the first and served from then on; deleting
    the image deletes it."""
    from django.core.files.storage import default_storage

    from backend.images.models import Image

    owner = make_user("owner")
    project = make_project(owner)
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile("scan.tiff", _tiff())]).created[0]
    url = f"/api/projects/{project.pk}/images/{image.pk}/file/?display=1"
    first = b"".join(client_for(owner).get(url).streaming_content)
    stored = Image.objects.get(pk=image.pk).rendition
    assert stored and default_storage.exists(stored)
    with default_storage.open(stored, "rb") as fh:
        assert fh.read() == first
    with default_storage.open(stored, "wb") as fh:  # served from the stored file from now on
        fh.write(first[:-1] + b"!")
    assert b"".join(client_for(owner).get(url).streaming_content).endswith(b"!")
    with django_capture_on_commit_callbacks(execute=True):
        gone = client_for(owner).delete(f"/api/projects/{project.pk}/images/{image.pk}/?version={image.version}")
    assert gone.status_code == 204, gone.content
    assert not default_storage.exists(stored)


def test_a_rendition_or_thumbnail_missing_from_storage_is_made_again(client_for):
    """Black-box round 17b: a stored display PNG that went missing (a disk restored without it) was a
    404 "The file is missing from storage." for good, the original intact; thumbnails too."""
    from django.core.files.storage import default_storage

    from backend.images.models import Image

    owner = make_user("owner")
    project = make_project(owner)
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile("scan.tiff", _tiff())]).created[0]
    base = f"/api/projects/{project.pk}/images/{image.pk}"
    first = b"".join(client_for(owner).get(f"{base}/file/?display=1").streaming_content)
    thumb = b"".join(client_for(owner).get(f"{base}/thumbnail/").streaming_content)
    stored = Image.objects.get(pk=image.pk)
    default_storage.delete(stored.rendition)
    default_storage.delete(stored.thumbnail)
    again = client_for(owner).get(f"{base}/file/?display=1")
    assert again.status_code == 200 and b"".join(again.streaming_content) == first
    thumb_again = client_for(owner).get(f"{base}/thumbnail/")
    assert thumb_again.status_code == 200 and b"".join(thumb_again.streaming_content) == thumb
    fresh = Image.objects.get(pk=image.pk)
    assert default_storage.exists(fresh.rendition) and default_storage.exists(fresh.thumbnail)


@pytest.mark.django_db(transaction=True)
def test_a_rendition_made_while_its_project_is_deleted_is_not_left_on_disk():
    """Black-box round 17b: the first ?display=1 stored its PNG after the project's deletion had
    listed the files to delete: the PNG stayed on disk. The name is written only once a deletion
    in progress is over, and then the image is gone: the file goes, 404."""
    import threading

    from django.db import connection, transaction
    from django.core.files.storage import default_storage

    from backend.core.errors import NotFound
    from backend.images import services
    from backend.projects.models import Project

    owner = make_user("owner")
    project = make_project(owner)
    image = upload_images(project=project, user=owner, files=[SimpleUploadedFile("scan.tiff", _tiff())]).created[0]
    stored = []
    real_store = services.store_file
    locked, release = threading.Event(), threading.Event()

    def delete_project():  # another request: holds the project's row as delete_project does
        try:
            with transaction.atomic():
                Project.objects.select_for_update().get(pk=project.pk)
                locked.set()
                release.wait(10)
                Project.objects.filter(pk=project.pk).delete()
        finally:
            connection.close()

    def store_then_let_go(*args, **kwargs):
        stored.append(real_store(*args, **kwargs))
        release.set()  # the deletion commits while this request writes the name
        return stored[-1]

    deleter = threading.Thread(target=delete_project)
    deleter.start()
    assert locked.wait(10)
    services.store_file = store_then_let_go
    try:
        with pytest.raises(NotFound):
            services.ensure_rendition(image)
    finally:
        services.store_file = real_store
        deleter.join(10)
    assert stored and not default_storage.exists(stored[0])
