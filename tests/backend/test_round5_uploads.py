"""Round 5 (black-box report api5): an image's stored name ends with its real format's extension
(F-A), the chunk PUT's query is strict and the same hot and in the view (F-E), and training
settings are strict integers with min_size <= max_size (F-J 4)."""
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from backend.config.asgi import django_asgi_app
from backend.images import upload_sessions
from backend.images.models import Image, UploadSession

from .factories import add_member, image_bytes, make_project, make_user
from .test_api_hot_paths import Probe, _call, token_headers
from .test_chunked_uploads import noisy_jpeg, open_session, process, put_chunk


def _jpeg() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (40, 30), (10, 200, 30)).save(out, format="JPEG")
    return out.getvalue()


def _png(seed: int) -> bytes:
    return image_bytes(30 + seed, 30, (seed * 40 % 256, 7, 99))


@pytest.fixture
def owner_project():
    owner = make_user("namer")
    return owner, make_project(owner)


# --------------------------------------------------------------------------- F-A: names


@pytest.mark.parametrize("sent, bytes_of, stored", [
    ("a.json", "png", "a.json.png"), ("data.yaml", "png", "data.yaml.png"), ("b.txt", "png", "b.txt.png"),
    ("c.JPG", "png", "c.JPG.png"), ("d.PNG", "png", "d.PNG"), ("noext", "png", "noext.png"),
    ("e.jpeg", "jpeg", "e.jpeg"), ("e2.JPE", "jpeg", "e2.JPE"), ("f.png", "jpeg", "f.png.jpg"),
    ("g.png.", "png", "g.png"), ("h.png ", "png", "h.png"), ("i.json. ", "png", "i.json.png"),
])
@pytest.mark.django_db
def test_a_direct_upload_stores_the_name_with_its_formats_extension(owner_project, client_for, sent, bytes_of, stored):
    """PNG bytes named 'a.json' were stored as 'a.json': a LabelMe export with images then always
    failed ('two files ... named a.json'), and the app's own exports could not be imported back."""
    owner, project = owner_project
    data = _png(1) if bytes_of == "png" else _jpeg()
    response = client_for(owner).post(f"/api/projects/{project.pk}/images/",
                                      {"files": [SimpleUploadedFile(sent, data)]}, format="multipart")
    assert response.status_code == 201, response.content
    [created] = response.json()["created"]
    assert created["original_name"] == stored
    assert Image.objects.get(pk=created["id"]).original_name == stored


@pytest.mark.django_db
def test_zip_entries_get_their_formats_extension_too(owner_project, client_for):
    owner, project = owner_project
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("set/a.json", _png(1))
        zf.writestr("set/tasks.json", _png(2))
        zf.writestr("set/ok.png", _png(3))
    response = client_for(owner).post(f"/api/projects/{project.pk}/images/",
                                      {"files": [SimpleUploadedFile("up.zip", out.getvalue())]}, format="multipart")
    assert response.status_code == 201, response.content
    assert sorted(i["original_name"] for i in response.json()["created"]) == [
        "up.zip/set/a.json.png", "up.zip/set/ok.png", "up.zip/set/tasks.json.png"]


@pytest.mark.django_db
def test_a_chunked_upload_gets_its_formats_extension_and_resumes_by_that_name(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(7, 80, 60)
    session = open_session(client, project, "field/shot.yaml", data)
    assert put_chunk(client, project, session["id"], 0, data).status_code == 200
    assert client.post(f"/api/projects/{project.pk}/images/uploads/{session['id']}/finish/").status_code == 202
    done = process(client, project, session["id"])
    assert done["status"] == "done" and done["file_name"] == "field/shot.yaml", done
    [image_id] = done["result"]["created"]
    assert Image.objects.get(pk=image_id).original_name == "field/shot.yaml.jpg"
    # A retry of the same session's processing (its first run stored the image, then lost the
    # database) still reports it as created, not as a duplicate of itself.
    from django.core.files import File

    from backend.images.services import upload_images

    report = upload_images(project=project, user=owner, files=[File(io.BytesIO(data), name="field/shot.yaml")],
                           from_upload=session["id"], file_sha256=Image.objects.get(pk=image_id).sha256)
    assert [i.pk for i in report.created] == [image_id] and not report.duplicates


def test_image_file_name_keeps_the_base_name_when_cutting_a_long_path():
    from backend.core.uploads import image_file_name

    name = image_file_name("d/" * 400 + "x.json", "image/png")
    assert len(name) == 500 and name.endswith("/x.json.png")
    assert image_file_name("...", "image/png") == "image.png"


# --------------------------------------------------------------------------- F-E: the chunk PUT's query


def _sessions(project) -> str:
    return f"/api/projects/{project.pk}/images/uploads/"


@pytest.mark.django_db
@pytest.mark.parametrize("offset", ["٠", " 0", "0 ", "+0", "0_0", "-0", "0x0", "", "０"])
def test_a_chunk_offset_is_ascii_digits_only(owner_project, client_for, offset):
    """int() read '٠', ' 0', '+0' and '0_0' as 0 and the chunk was written there."""
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(3, 60, 40)
    sid = open_session(client, project, "p.jpg", data)["id"]
    from urllib.parse import quote

    response = client.generic("PUT", f"{_sessions(project)}{sid}/?offset={quote(offset)}", data[:10],
                              content_type="application/octet-stream")
    assert response.status_code == 400, response.content
    assert "offset" in response.json()
    assert UploadSession.objects.get(pk=sid).received_bytes == 0


@pytest.mark.django_db
@pytest.mark.parametrize("finish, queued", [("TRUE", True), ("True", True), ("1", True), ("FALSE", False), ("0", False)])
def test_finish_takes_1_0_true_false_in_any_case_as_force_does(owner_project, client_for, finish, queued):
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(4, 60, 40)
    sid = open_session(client, project, "q.jpg", data)["id"]
    response = client.generic("PUT", f"{_sessions(project)}{sid}/?offset=0&finish={finish}", data,
                              content_type="application/octet-stream")
    assert response.status_code == 200, response.content
    assert (response.json()["status"] != "receiving") is queued


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "delete"])
@pytest.mark.parametrize("query", ["offset=5&finish=1", "finish=1", "offset=0", "zz=1"])
def test_get_and_delete_of_an_upload_take_no_parameters(owner_project, client_for, method, query):
    """`DELETE .../uploads/{id}/?offset=5&finish=1` cancelled the upload (the PUT's parameters were allowed)."""
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(5, 60, 40)
    sid = open_session(client, project, "r.jpg", data)["id"]
    response = getattr(client, method)(f"{_sessions(project)}{sid}/?{query}")
    assert response.status_code == 400, response.content
    assert sorted(q.split("=")[0] for q in query.split("&"))[0] in response.json()
    assert UploadSession.objects.filter(pk=sid, status="receiving").exists()
    assert getattr(client, method)(f"{_sessions(project)}{sid}/").status_code in (200, 204)


@pytest.mark.django_db
@pytest.mark.parametrize("size, message", [(-1, "positive"), (0, "empty")])
def test_a_negative_size_is_not_called_empty(owner_project, client_for, size, message):
    owner, project = owner_project
    response = client_for(owner).post(_sessions(project), {"file_name": "x.jpg", "size_bytes": size}, format="json")
    assert response.status_code == 400
    assert message in response.json()["size_bytes"][0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("query, hot_answers", [
    (b"offset=0&finish=TRUE", True), (b"offset=0&finish=False", True), (b"offset=%D9%A0", False),
    (b"offset=+0", False), (b"offset=0_0", False), (b"offset=%200", False),
])
def test_the_hot_chunk_route_and_the_view_agree(query, hot_answers):
    """The hot route (hot_upload.py) answers plain chunk PUTs before Django: it takes `finish` in
    any case as the view now does, and hands every other offset to the view, which refuses it."""
    import asyncio

    from backend.core.async_db import pool
    from backend.images.hot_upload import UploadRoutes

    owner = make_user("lead5")
    project = make_project(owner)
    uploader = make_user("ulla5")
    add_member(project, uploader, "annotator")
    headers = token_headers(uploader, json_body=True)
    data = noisy_jpeg(6, 60, 40)
    try:
        opened = asyncio.run(_call(django_asgi_app, "POST", _sessions(project), headers,
                                   json.dumps({"file_name": "h.jpg", "size_bytes": len(data)}).encode()))
        sid = json.loads(opened[2])["id"]
        probe = Probe()
        status, _, body = asyncio.run(_call(UploadRoutes(probe), "PUT", f"{_sessions(project)}{sid}/",
                                            token_headers(uploader), data, query))
        assert (probe.calls == 0) is hot_answers, body
        session = UploadSession.objects.get(pk=sid)
        if b"finish" in query:
            assert status == 200, body
            assert (session.status != "receiving") is (b"TRUE" in query)
        else:
            assert status == 400 and "offset" in json.loads(body), body
            assert session.received_bytes == 0
    finally:
        pool.discard()
        upload_sessions.temp_path_of(sid).unlink(missing_ok=True)


# --------------------------------------------------------------------------- F-J 4: training settings


@pytest.mark.django_db
@pytest.mark.parametrize("kind, params, field", [
    ("head", {"epochs": 2.0}, "epochs"), ("head", {"hidden": 32.0}, "hidden"), ("head", {"seed": True}, "seed"),
    ("maskrcnn", {"steps": 10.0}, "steps"), ("maskrcnn", {"min_size": "64"}, "min_size"),
    ("maskrcnn", {"min_size": 2048, "max_size": 32}, "min_size"),
    ("maskrcnn", {"min_size": 1500}, "min_size"),  # above the default max_size (1333)
    ("maskrcnn", {"max_size": 600}, "max_size"),  # below the default min_size (800)
])
def test_training_settings_are_strict_integers_and_min_size_is_at_most_max_size(client_for, kind, params, field):
    from backend.learning.models import TrainingRun

    owner = make_user("trainer5")
    project = make_project(owner)
    response = client_for(owner).post(f"/api/projects/{project.pk}/trainings/", {"kind": kind, "params": params},
                                      format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and field in response.json()["detail"]
    assert not TrainingRun.objects.filter(project=project).exists()


def test_valid_training_sizes_pass():
    from backend.learning.services import _params

    assert _params("maskrcnn", {"min_size": 512, "max_size": 512}) == {"min_size": 512, "max_size": 512}
    assert _params("maskrcnn", {"min_size": 1333}) == {"min_size": 1333}
    assert _params("head", {"epochs": 3, "holdout": 0.2}) == {"epochs": 3, "holdout": 0.2}
