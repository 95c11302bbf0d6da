"""Decoding pictures has a memory budget per process (black-box api9 F1, F2): a 750 KB PNG that
decodes to ~760 MB was taken by the web process, eight at once took it to 3.8 GB."""
import base64
import io
import struct
import threading
import time
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from backend.core import decode_budget
from backend.images.models import Image

from .factories import image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db


def zero_png(width: int, height: int, *, bit_depth: int = 16, color_type: int = 6) -> bytes:
    """An all-zero PNG written row by row: a few hundred KB on the wire for any size."""
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    row = b"\x00" * (1 + width * channels * bit_depth // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_a_picture_that_would_decode_past_the_budget_is_refused_before_decoding(client_for, settings):
    settings.DECODE_MEMORY_BYTES = 64 * 2**20
    owner = make_user("bomber")
    project = make_project(owner)
    bomb = zero_png(3000, 3000)  # 16-bit RGBA: ~25 KB sent, 36 MB of pixels, twice that to thumbnail
    small = image_bytes(40, 30)
    response = client_for(owner).post(f"/api/projects/{project.pk}/images/", {"files": [
        SimpleUploadedFile("bomb.png", bomb), SimpleUploadedFile("ok.png", small)]}, format="multipart")
    assert response.status_code == 201, response.content
    [error] = response.json()["errors"]
    assert error["name"] == "bomb.png" and "DECODE_MEMORY_BYTES" in error["error"], error
    assert list(Image.objects.filter(project=project).values_list("original_name", flat=True)) == ["ok.png"]


def test_big_decodes_wait_for_each_other_and_a_long_wait_is_refused(settings):
    settings.DECODE_MEMORY_BYTES, settings.DECODE_WAIT_SECONDS = 100, 5
    order = []
    first_in = threading.Event()

    def first():
        with decode_budget.budget.reserve(60):
            first_in.set()
            time.sleep(0.3)
            order.append("first out")

    def second():
        first_in.wait()
        with decode_budget.budget.reserve(60):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order == ["first out", "second in"]
    with decode_budget.budget.reserve(10), decode_budget.budget.reserve(10):
        pass  # small ones pass side by side

    settings.DECODE_WAIT_SECONDS = 0
    with decode_budget.budget.reserve(60), pytest.raises(decode_budget.DecodeRefused, match="busy"):
        with decode_budget.budget.reserve(60):
            pass


def palette_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("P", (width, height)).save(out, "PNG", transparency=0)
    return out.getvalue()


def test_the_cost_counts_bands_bit_depth_and_the_widest_copy_from_the_header():
    with PILImage.open(io.BytesIO(zero_png(100, 50))) as rgba16:  # loaded as 8-bit RGBA, copied as such
        assert decode_budget.decode_cost(rgba16) == 100 * 50 * (4 + 4)
    with PILImage.open(io.BytesIO(zero_png(100, 50, bit_depth=16, color_type=0))) as grey16:  # "I;16", then "I"
        assert decode_budget.decode_cost(grey16) == 100 * 50 * (2 + 4)
    with PILImage.open(io.BytesIO(palette_png(100, 50))) as palette:  # "P", then RGBA twice over
        assert decode_budget.decode_cost(palette) == 100 * 50 * (1 + 7)


def test_a_palette_picture_is_counted_at_the_rgba_copy_the_thumbnail_makes(client_for, settings):
    """Round 10: a palette PNG was counted at 1 byte a pixel while the thumbnail converts it to
    RGBA at full size first: eight 94 KB uploads took a web process to 3.5 GB."""
    settings.DECODE_MEMORY_BYTES = 32 * 2**20
    owner = make_user("palette")
    project = make_project(owner)
    response = client_for(owner).post(f"/api/projects/{project.pk}/images/", {"files": [
        SimpleUploadedFile("palette.png", palette_png(3000, 3000))]}, format="multipart")  # 9 MB decoded, 72 with RGBA
    assert response.status_code == 400, response.content
    assert "DECODE_MEMORY_BYTES" in response.json()["errors"][0]["error"]
    assert not Image.objects.filter(project=project).exists()


def test_a_labelme_mask_of_more_than_one_band_is_refused_unread(admin_user):
    """A 16-bit RGBA mask of 10,000 x 10,000 px in 1 MB of base64 cost the cpu worker 1.6 GB and 3 s."""
    from .exchange.helpers import H, W, build_project, json_upload, run_import

    project, _, _ = build_project(admin_user, name="Masks")
    shapes = []
    for name, png in (("rgba", zero_png(10, 10)), ("bits", None)):
        if png is None:
            out = io.BytesIO()
            PILImage.new("1", (10, 10), 1).save(out, "PNG")
            png = out.getvalue()
        shapes.append({"label": "hammer", "points": [[1, 1], [10, 10]], "shape_type": "mask",
                       "mask": base64.b64encode(png).decode(), "description": name})
    doc = {"shapes": shapes[:1], "imagePath": "img1.png", "imageHeight": H, "imageWidth": W}
    job = run_import(project, admin_user, "labelme", json_upload(doc))
    assert job.status == "failed"
    assert [e["error"] for e in job.errors] == [
        "the shape's 'mask' is a RGBA PNG: a mask has one band (1-bit, 8-bit grey or palette)"], job.errors
    doc["shapes"] = shapes[1:]
    job = run_import(project, admin_user, "labelme", json_upload(doc))
    assert job.status == "done", job.errors
