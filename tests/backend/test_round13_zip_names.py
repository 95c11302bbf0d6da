"""Black-box round 13: a zip made by Info-ZIP on Linux (or macOS's Archive Utility) holds UTF-8
names without the UTF-8 flag; zipfile read them as CP437, and a gallery folder 'triangle ▲ مثلث'
became the class 'triangle Γû▓ ┘à╪...' with no warning."""
import io
import struct
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.core.zips import open_zip
from backend.gallery.models import GalleryImage
from backend.projects.models import LabelClass

from .factories import image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db


def unflagged_zip(entries: dict[str, bytes]) -> bytes:
    """A zip whose names are UTF-8 bytes with general-purpose bit 11 clear, as Info-ZIP writes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    raw = bytearray(out.getvalue())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := raw.find(signature, start)) >= 0:
            flags = struct.unpack_from("<H", raw, at + flags_at)[0]
            struct.pack_into("<H", raw, at + flags_at, flags & ~0x800)
            start = at + 4
    return bytes(raw)


def test_utf8_names_without_the_flag_are_read_as_utf8_and_cp437_ones_stay():
    data = unflagged_zip({"triangle ▲ مثلث/a.png": b"x", "caf\xe9/b.png": b"y"})
    names = open_zip(io.BytesIO(data)).namelist()
    assert names[0] == "triangle ▲ مثلث/a.png"
    # Python wrote 'café' as UTF-8 too (the flag cleared): read back as written.
    assert names[1] == "café/b.png"
    with open_zip(io.BytesIO(data)) as archive:
        assert archive.read(archive.infolist()[0]) == b"x"
        assert archive.read("triangle ▲ مثلث/a.png") == b"x"
    # A real CP437 name (byte 0x82 = 'é' in CP437, not valid UTF-8) keeps its CP437 reading.
    cp437 = bytearray(unflagged_zip({"cafX/b.png": b"z"}))
    for at in [i for i in range(len(cp437)) if cp437[i:i + 4] == b"cafX"]:
        cp437[at + 3] = 0x82
    assert open_zip(io.BytesIO(bytes(cp437))).namelist() == ["café/b.png"]


def test_a_linux_gallery_zip_makes_the_class_its_folder_names(client_for):
    owner = make_user("gallery-admin")
    project = make_project(owner)
    data = unflagged_zip({"triangle ▲ مثلث/a.png": image_bytes(30, 30, (1, 9, 9))})
    response = client_for(owner).post(f"/api/projects/{project.pk}/gallery/",
                                      {"files": [SimpleUploadedFile("g.zip", data)]}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["created_classes"] == ["triangle ▲ مثلث"], response.content
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["triangle ▲ مثلث"]
    assert GalleryImage.objects.get(project=project).original_name.endswith("a.png")
