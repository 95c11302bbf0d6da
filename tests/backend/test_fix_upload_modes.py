"""Uploads of large palette, 16-bit and 1-bit images: Image.reduce() refuses those modes, so the
thumbnail step converted nothing and every such image over ~1500 px was "image has wrong mode"."""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from backend.core.uploads import validate_image
from backend.images.models import Image

from .factories import make_class, make_project, make_user

pytestmark = pytest.mark.django_db

W, H = 2001, 1700


def _encode(img: PILImage.Image, fmt: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def palette_png() -> bytes:
    img = PILImage.new("P", (W, H), 3)
    img.putpalette([0, 0, 0] * 3 + [200, 20, 20] + [0, 0, 0] * 252)
    return _encode(img)


def palette_transparent_png() -> bytes:
    img = PILImage.new("P", (W, H), 1)
    img.putpalette([0, 0, 0, 10, 200, 10] + [0, 0, 0] * 254)
    img.paste(0, (0, 0, W // 2, H))
    return _encode(img, transparency=0)


def sixteen_bit_png(high: int = 60000) -> bytes:
    img = PILImage.new("I;16", (W, H), 0)
    img.paste(high, (W // 2, 0, W, H))
    return _encode(img)


def one_bit(fmt: str, **kwargs) -> bytes:
    img = PILImage.new("1", (W, H), 0)
    img.paste(1, (W // 2, 0, W, H))
    return _encode(img, fmt, **kwargs)


def thumb_of(data: bytes) -> PILImage.Image:
    image = validate_image(data)
    assert (image.width, image.height) == (W, H)
    thumb = PILImage.open(io.BytesIO(image.thumbnail))
    assert thumb.format == "JPEG" and thumb.size == (256, 217)
    return thumb.convert("RGB")


def test_large_palette_png_gets_a_colour_thumbnail():
    r, g, b = thumb_of(palette_png()).getpixel((128, 108))
    assert r > 150 and g < 60 and b < 60  # the palette colour, not palette indices


def test_large_transparent_palette_png_is_flattened_on_white():
    thumb = thumb_of(palette_transparent_png())
    assert min(thumb.getpixel((10, 100))) > 240  # transparent half: white
    r, g, b = thumb.getpixel((240, 100))
    assert g > 150 and r < 60 and b < 60


@pytest.mark.parametrize("high", [60000, 4000])  # full 16-bit range, and a 12-bit scan in a 16-bit file
def test_large_16_bit_png_is_scaled_to_8_bits(high):
    thumb = thumb_of(sixteen_bit_png(high))
    assert max(thumb.getpixel((10, 100))) < 20  # black stays black
    assert min(thumb.getpixel((240, 100))) > 230  # the brightest value is white, not clipped or black


@pytest.mark.parametrize("fmt,kwargs", [("PNG", {}), ("TIFF", {}), ("TIFF", {"compression": "group4"}), ("BMP", {})])
def test_large_1_bit_images_get_a_thumbnail(fmt, kwargs):
    thumb = thumb_of(one_bit(fmt, **kwargs))
    assert max(thumb.getpixel((10, 100))) < 20 and min(thumb.getpixel((240, 100))) > 230


def test_they_upload_through_the_api_to_images_and_gallery(client_for):
    owner = make_user("modes")
    project = make_project(owner)
    files = {"p.png": palette_png(), "i16.png": sixteen_bit_png(), "bw.tif": one_bit("TIFF", compression="group4")}
    response = client_for(owner).post(
        f"/api/projects/{project.pk}/images/",
        {"files": [SimpleUploadedFile(name, data) for name, data in files.items()]}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["errors"] == [] and len(response.json()["created"]) == 3
    assert Image.objects.filter(project=project).exclude(thumbnail="").count() == 3
    label_class = make_class(project, "scan")
    gallery = client_for(owner).post(
        f"/api/projects/{project.pk}/gallery/",
        {"files": [SimpleUploadedFile(name, data) for name, data in files.items()], "label_class": label_class.pk},
        format="multipart")
    assert gallery.status_code == 201, gallery.content
    assert gallery.json()["errors"] == [] and len(gallery.json()["created"]) == 3
