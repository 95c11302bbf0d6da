"""Black-box round 15: zips that zipfile cannot read answered an HTML 500 on image and gallery
uploads and "internal error" (with a worker traceback) on imports: an entry name flagged UTF-8
whose bytes are not UTF-8 (some Windows zippers write their code page so), and entries compressed
with a method zipfile does not have (Deflate64 from Windows Explorer and 7-Zip, AES, unknown).
Each is now a clear refusal naming the problem; a corrupt entry met midway in an import is the
upload's fault, not an internal error."""
import io
import json
import logging
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.gallery.models import GalleryImage
from backend.images.models import Image

from .exchange.helpers import run_import
from .factories import image_bytes, make_class, make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def raw_zip(entries: list[tuple[bytes, bytes]], *, flag: int = 0, method: int = 0) -> bytes:
    """A zip written by hand: any name bytes, flag bits and method number, the data stored as is."""
    out, directory = io.BytesIO(), []
    for name, data in entries:
        offset, crc = out.tell(), zlib.crc32(data) & 0xFFFFFFFF
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flag, method, 0, 0, crc, len(data), len(data), len(name), 0)
                  + name + data)
        directory.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flag, method, 0, 0, crc, len(data),
                                     len(data), len(name), 0, 0, 0, 0, 0, offset) + name)
    start, central = out.tell(), b"".join(directory)
    out.write(central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), start, 0))
    return out.getvalue()


def upload(client, project, route: str, data: bytes):
    return client.post(f"/api/projects/{project.pk}/{route}/", {"files": [SimpleUploadedFile("z.zip", data)]},
                       format="multipart")


@pytest.fixture
def admin_project(client_for):
    owner = make_user("zip-admin")
    project = make_project(owner)
    make_class(project, "cls")
    return client_for(owner), project, owner


@pytest.mark.parametrize("route", ["images", "gallery"])
def test_a_name_flagged_utf8_that_is_not_is_refused_by_name(admin_project, route):
    client, project, _ = admin_project
    data = raw_zip([("cls/кот.png".encode("cp1251"), image_bytes(40, 30, (3, 3, 3)))], flag=0x800)
    response = upload(client, project, route, data)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "marked as UTF-8 but is not UTF-8" in json.dumps(response.json())
    assert not Image.objects.filter(project=project).exists() and not GalleryImage.objects.filter(project=project).exists()


@pytest.mark.parametrize("method, named", [(9, "Deflate64"), (99, "AES encryption"), (77, "method 77")])
@pytest.mark.parametrize("route", ["images", "gallery"])
def test_an_entry_in_an_unreadable_compression_is_an_item_error(admin_project, route, method, named):
    client, project, _ = admin_project
    good = raw_zip([(b"cls/a.png", image_bytes(40, 30, (5, 5, 5)))])
    bad = raw_zip([(b"cls/b.png", image_bytes(40, 30, (6, 6, 6)))], method=method)
    response = upload(client, project, route, bad)
    assert response.status_code in (200, 201, 400), response.content
    assert response["Content-Type"].startswith("application/json")
    assert f"compressed with {named}" in json.dumps(response.json()), response.content
    # The same route still takes a readable zip.
    assert upload(client, project, route, good).status_code in (200, 201)


def labelme_zip(*, method: int = 0, corrupt: bool = False) -> bytes:
    doc = json.dumps({"shapes": [], "imagePath": "img1.png", "imageHeight": 30, "imageWidth": 40}).encode()
    if corrupt:
        # Declared bzip2, data not bzip2: zipfile opens it and fails midway through reading.
        return raw_zip([(b"a.json", doc)], method=12)
    return raw_zip([(b"a.json", doc)], method=method)


def test_an_import_names_an_unreadable_compression(admin_project):
    _, project, owner = admin_project
    make_image(project, width=40, height=30, seed=1)
    job = run_import(project, owner, "labelme", SimpleUploadedFile("lm.zip", labelme_zip(method=9)))
    assert job.status == "failed"
    assert "compressed with Deflate64" in json.dumps(job.errors) and "internal error" not in json.dumps(job.errors)


def test_an_import_of_a_corrupt_entry_is_the_uploads_fault_not_an_internal_error(admin_project, caplog):
    _, project, owner = admin_project
    make_image(project, width=40, height=30, seed=1)
    with caplog.at_level(logging.INFO):
        job = run_import(project, owner, "labelme", SimpleUploadedFile("lm.zip", labelme_zip(corrupt=True)))
    assert job.status == "failed"
    text = json.dumps(job.errors)
    assert "the zip could not be read" in text and "internal error" not in text, text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a corrupt upload is no server error"
