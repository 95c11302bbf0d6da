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
    with PILImage.open(io.BytesIO(shown.content)) as png, PILImage.open(io.BytesIO(data)) as tiff:
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
