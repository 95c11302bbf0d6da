"""An upload's hot routes (backend/images/hot_upload.py) answer exactly as the views do.

Each request goes through the real ASGI application with the hot routes in front, on the real
test database; a probe around Django tells whether the hot route answered or handed the request
on. A request that changes nothing is also sent through Django alone and must get the same
status, headers and body; a request that writes is compared with the view's serializer of the
row it wrote, and with the files on disk.
"""
import asyncio
import hashlib
import json
import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from backend.config.asgi import django_asgi_app
from backend.images import upload_sessions
from backend.images.hot_upload import UploadRoutes
from backend.images.models import UploadSession
from backend.images.serializers import UploadSessionSerializer
from backend.projects.models import Membership

from .factories import add_member, make_image, make_project, make_user
from .test_api_hot_paths import Probe, _call, session_headers, token_headers
from .test_chunked_uploads import noisy_jpeg

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def close_kept_connections():
    from backend.core.async_db import pool

    yield
    pool.discard()


def call(app, *args, **kwargs):
    return asyncio.run(_call(app, *args, **kwargs))


def hot(*args, **kwargs):
    """(the answer through the hot routes, whether they handed it to Django)."""
    probe = Probe()
    answer = call(UploadRoutes(probe), *args, **kwargs)
    return answer, probe.calls > 0


def as_view_renders(session_id: int) -> bytes:
    return JSONRenderer().render(UploadSessionSerializer(UploadSession.objects.get(pk=session_id)).data)


def headers_of(answer) -> dict:
    return {k: v for k, v in answer[1] if k != b"content-length"}


@pytest.fixture
def scene():
    owner = make_user("lead")
    project = make_project(owner)
    uploader = make_user("ulla")
    add_member(project, uploader, "annotator")
    return {"owner": owner, "project": project, "uploader": uploader, "token": token_headers(uploader, json_body=True)}


def sessions_path(s):
    return f"/api/projects/{s['project'].pk}/images/uploads/"


def open_body(name="photo.jpg", size=10, **extra):
    return json.dumps({"file_name": name, "size_bytes": size, **extra}).encode()


def open_session(s, data: bytes, name="photo.jpg", **extra) -> dict:
    (status, _, body), handed_on = hot("POST", sessions_path(s), s["token"], open_body(name, len(data), **extra))
    assert status == 201 and not handed_on, body
    return json.loads(body)


def put(s, session_id, offset, chunk, finish=False, headers=None):
    query = f"offset={offset}{'&finish=1' if finish else ''}".encode()
    return hot("PUT", f"{sessions_path(s)}{session_id}/", headers or s["token"], chunk, query=query)


# ------------------------------------------------------------------------------- opening a session


def test_opening_a_session_is_served_hot_as_the_view_renders_it(scene):
    (status, headers, body), handed_on = hot("POST", sessions_path(scene), scene["token"], open_body("  ёлка.jpg ", 1234))
    assert status == 201 and not handed_on
    created = json.loads(body)
    assert body == as_view_renders(created["id"])
    assert created["file_name"] == "ёлка.jpg" and created["status"] == "receiving" and created["received_bytes"] == 0
    assert upload_sessions.temp_path_of(created["id"]).exists()
    view = call(django_asgi_app, "POST", sessions_path(scene), scene["token"], open_body("other.jpg", 5))
    assert view[0] == 201 and headers_of(view) == {k: v for k, v in headers if k != b"content-length"}


@pytest.mark.parametrize("sent, kept", [
    ("../../etc/passwd.jpg", "etc/passwd.jpg"), ("C:\\Users\\me\\a.jpg", "Users/me/a.jpg"),
    ("/abs/./b.jpg", "abs/b.jpg"), ("..", "upload"), ("field/photo.jpg", "field/photo.jpg"),
])
def test_a_sessions_name_loses_its_climbing_parts_hot_and_in_the_view(scene, sent, kept):
    """A chunked upload kept "../../etc/passwd.jpg" as the image's name, and exports wrote it."""
    (status, _, body), handed_on = hot("POST", sessions_path(scene), scene["token"], open_body(sent, 10))
    assert status == 201 and not handed_on and json.loads(body)["file_name"] == kept
    view = call(django_asgi_app, "POST", sessions_path(scene), scene["token"], open_body(sent, 10))
    assert view[0] == 201 and json.loads(view[2])["file_name"] == kept


def test_a_known_hash_opens_a_finished_session_reporting_the_duplicate(scene):
    image = make_image(scene["project"])
    parts_before = set(upload_sessions.temp_dir().iterdir())
    (status, _, body), handed_on = hot("POST", sessions_path(scene), scene["token"],
                                       open_body("again.jpg", 99, sha256=image.sha256.upper()))
    assert status == 201 and not handed_on
    created = json.loads(body)
    assert body == as_view_renders(created["id"])
    assert created["status"] == "done"
    assert created["result"] == {"created": [], "duplicates": [{"name": "again.jpg", "existing_id": image.pk}], "errors": []}
    assert set(upload_sessions.temp_dir().iterdir()) == parts_before, "no part file for bytes never sent"


def test_a_browser_session_opens_hot_with_its_csrf_token(scene):
    for _ in range(2):  # the second time this process knows the session: one round trip
        (status, _, _), handed_on = hot("POST", sessions_path(scene), session_headers(scene["uploader"]), open_body())
        assert status == 201 and not handed_on


@pytest.mark.parametrize("case", [
    "anonymous", "viewer", "non-member", "no csrf", "empty file", "too large", "bad hash", "no name", "blank name",
    "nested", "form body", "too many open", "bad host", "query string", "not json",
])
def test_opening_refusals_are_the_views_and_write_nothing(scene, case, settings):
    headers, body, query, path = scene["token"], open_body(), b"", sessions_path(scene)
    if case == "anonymous":
        headers = [(b"content-type", b"application/json")]
    elif case == "viewer":
        Membership.objects.filter(project=scene["project"], user=scene["uploader"]).update(role="viewer")
    elif case == "non-member":
        Membership.objects.filter(project=scene["project"], user=scene["uploader"]).delete()
    elif case == "no csrf":
        headers = session_headers(scene["uploader"], csrf=False)
    elif case == "empty file":
        body = open_body(size=0)
    elif case == "too large":
        body = open_body(size=settings.MAX_UPLOAD_BYTES + 1)
    elif case == "bad hash":
        body = open_body(sha256="z" * 64)
    elif case == "no name":
        body = json.dumps({"size_bytes": 5}).encode()
    elif case == "blank name":
        body = open_body(name="   ")
    elif case == "nested":
        body = json.dumps({"file_name": "a.jpg", "size_bytes": 5, "x": [[1]]}).encode()
    elif case == "form body":
        headers = [h for h in headers if h[0] != b"content-type"] + [(b"content-type", b"application/x-www-form-urlencoded")]
        body = b"file_name=a.jpg&size_bytes=5"
    elif case == "too many open":
        for i in range(upload_sessions.MAX_OPEN_SESSIONS):
            UploadSession.objects.create(project=scene["project"], created_by=scene["uploader"], file_name=f"{i}", size_bytes=9)
    elif case == "bad host":
        headers = [(b"host", b"evil.example")] + headers
    elif case == "query string":
        query = b"x=1"
    elif case == "not json":
        body = b"{not json"
    before = UploadSession.objects.count()
    answer, handed_on = hot("POST", path, headers, body, query=query)
    assert handed_on, "the hot route must hand this one to the view"
    # "query string": an unknown parameter on a write is the view's 400 too (test_round4_strict.py)
    assert UploadSession.objects.count() == before
    assert answer == call(django_asgi_app, "POST", path, headers, body, query=query)
    assert answer[0] in {400, 403, 404, 413, 415}, answer


# ----------------------------------------------------------------------------------------- chunks


def test_chunks_are_written_hot_at_the_servers_offset_and_the_last_one_queues_the_file(scene):
    data = noisy_jpeg(3)
    session = open_session(scene, data, sha256=hashlib.sha256(data).hexdigest())
    half = len(data) // 2
    (status, headers, body), handed_on = put(scene, session["id"], 0, data[:half])
    assert status == 200 and not handed_on and body == as_view_renders(session["id"])
    assert json.loads(body)["received_bytes"] == half
    assert upload_sessions.temp_path_of(session["id"]).read_bytes() == data[:half]
    # A retry of the same chunk is refused by the view (the server holds more): nothing moves.
    (status, _, body), handed_on = put(scene, session["id"], 0, data[:half])
    assert handed_on and status == 409 and json.loads(body)["received_bytes"] == half

    (status, _, body), handed_on = put(scene, session["id"], half, data[half:], finish=True)
    answered = json.loads(body)
    assert status == 200 and not handed_on and (answered["status"], answered["received_bytes"]) == ("queued", len(data))
    # A worker of an earlier test may already be processing it: the row says how far it got.
    row = UploadSession.objects.get(pk=session["id"])
    assert row.dispatched_at is not None, "the worker's task reached the broker and the outbox knows it"
    assert row.received_bytes == len(data) and row.stored_name == f"incoming/{scene['project'].pk}/{session['id']}.bin"
    if row.status == "queued":  # this one read, not a second (the worker may claim it in between)
        assert body == JSONRenderer().render(UploadSessionSerializer(row).data)
        with default_storage.open(row.stored_name, "rb") as fh:
            assert fh.read() == data
    assert not upload_sessions.temp_path_of(session["id"]).exists()
    view = call(django_asgi_app, "GET", f"{sessions_path(scene)}{session['id']}/", scene["token"])
    assert headers_of(view) == {k: v for k, v in headers if k != b"content-length"}


def test_storage_failing_as_a_chunk_finishes_loses_nothing_and_the_finish_call_completes_it(scene, monkeypatch):
    """The bytes are written and kept; the view answers 409 with received_bytes at the end (what
    the browser then finishes with), and a later finish call queues the file."""
    from backend.core import files

    data = noisy_jpeg(9)
    session = open_session(scene, data)

    def storage_down(*args, **kwargs):
        raise RuntimeError("object storage unreachable")

    monkeypatch.setattr(files, "save_finished_file", storage_down)
    (status, _, body), handed_on = put(scene, session["id"], 0, data, finish=True)
    assert handed_on and status == 409 and json.loads(body)["received_bytes"] == len(data)
    row = UploadSession.objects.get(pk=session["id"])
    assert (row.status, row.received_bytes) == ("receiving", len(data))
    assert upload_sessions.temp_path_of(session["id"]).read_bytes() == data
    monkeypatch.undo()
    finished = call(django_asgi_app, "POST", f"{sessions_path(scene)}{session['id']}/finish/", scene["token"])
    assert finished[0] == 202 and json.loads(finished[2])["status"] == "queued"


def test_a_part_file_gone_mid_upload_is_refused_not_filled_with_zeros(scene):
    """Regression: the next chunk re-created the missing part file at its offset, so the file
    went to processing with zeros where the earlier chunks had been."""
    data = noisy_jpeg(10)
    session = open_session(scene, data)
    half = len(data) // 2
    assert put(scene, session["id"], 0, data[:half])[0][0] == 200
    upload_sessions.temp_path_of(session["id"]).unlink()
    (status, _, body), handed_on = put(scene, session["id"], half, data[half:], finish=True)
    assert handed_on and status == 400 and "upload the file again" in json.loads(body)["detail"]
    row = UploadSession.objects.get(pk=session["id"])
    assert (row.status, row.received_bytes) == ("receiving", half)
    assert not upload_sessions.temp_path_of(session["id"]).exists()


def test_a_browser_session_sends_chunks_hot_with_its_csrf_token(scene):
    data = noisy_jpeg(4)
    session = open_session(scene, data)
    (status, _, body), handed_on = put(scene, session["id"], 0, data, finish=True, headers=session_headers(scene["uploader"]))
    assert status == 200 and not handed_on and json.loads(body)["status"] == "queued"


@pytest.mark.parametrize("case", [
    "wrong offset", "another person's session", "unknown session", "past the size", "finish too early", "no longer receiving",
    "viewer", "anonymous", "no csrf", "short body", "long body", "no content length", "odd query", "chunk too large",
])
def test_chunk_refusals_are_the_views_and_write_nothing(scene, case):
    data = noisy_jpeg(5)
    session = open_session(scene, data)
    path = f"{sessions_path(scene)}{session['id']}/"
    headers, body, query = scene["token"], data[:100], b"offset=0"
    declared = None
    if case == "wrong offset":
        query = b"offset=7"
    elif case == "another person's session":
        add_member(scene["project"], other := make_user("olga"), "annotator")
        headers = token_headers(other)
    elif case == "unknown session":
        path = f"{sessions_path(scene)}999999999/"
    elif case == "past the size":
        body = data + b"more"
    elif case == "finish too early":
        query = b"offset=0&finish=1"
    elif case == "no longer receiving":
        UploadSession.objects.filter(pk=session["id"]).update(status="queued")
    elif case == "viewer":
        Membership.objects.filter(project=scene["project"], user=scene["uploader"]).update(role="viewer")
    elif case == "anonymous":
        headers = []
    elif case == "no csrf":
        headers = session_headers(scene["uploader"], csrf=False)
    elif case == "short body":
        declared = str(len(body) + 10).encode()
    elif case == "long body":
        declared = str(len(body) - 10).encode()
    elif case == "no content length":
        declared = b""
    elif case == "odd query":
        query = b"offset=0&finish=yes&offset=1"
    elif case == "chunk too large":
        body = b"x" * (upload_sessions.MAX_CHUNK_BYTES + 1)
    before = UploadSession.objects.get(pk=session["id"])

    async def both():
        probe = Probe()
        first = await _call(UploadRoutes(probe), "PUT", path, headers, body, query, declared)
        second = await _call(django_asgi_app, "PUT", path, headers, body, query, declared)
        return first, probe.calls, second

    answer, handed_on, view = asyncio.run(both())
    assert handed_on == 1, "the hot route must hand this one to the view"
    if case in {"short body", "long body", "no content length"}:
        return  # the view reads by Content-Length: what it answers and writes is its business
    after = UploadSession.objects.get(pk=session["id"])
    assert (after.received_bytes, after.status) == (before.received_bytes, before.status)
    assert upload_sessions.temp_path_of(session["id"]).read_bytes() == b"" or case == "no longer receiving"
    assert answer == view and answer[0] in {400, 403, 404, 409, 413}, answer


def test_a_client_that_leaves_mid_chunk_gets_no_answer_and_nothing_moves(scene):
    data = noisy_jpeg(6)
    session = open_session(scene, data)
    answers = []

    async def run():
        messages = [{"type": "http.request", "body": data[:50], "more_body": True}, {"type": "http.disconnect"}]

        async def receive():
            return messages.pop(0)

        async def send(message):
            answers.append(message)

        probe = Probe()
        scope = {"type": "http", "method": "PUT", "path": f"{sessions_path(scene)}{session['id']}/",
                 "query_string": b"offset=0", "headers": [(b"host", b"127.0.0.1"), *scene["token"],
                                                          (b"content-length", str(len(data)).encode())],
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "scheme": "http", "http_version": "1.1",
                 "root_path": "", "raw_path": b"", "asgi": {"version": "3.0"}}
        await UploadRoutes(probe)(scope, receive, send)
        return probe.calls

    assert asyncio.run(run()) == 0 and answers == []
    assert UploadSession.objects.get(pk=session["id"]).received_bytes == 0
    assert upload_sessions.temp_path_of(session["id"]).read_bytes() == b""


def test_where_an_upload_stands_is_served_hot_as_the_view_answers(scene):
    data = noisy_jpeg(7)
    session = open_session(scene, data)
    put(scene, session["id"], 0, data[:300])
    path = f"{sessions_path(scene)}{session['id']}/"
    answer, handed_on = hot("GET", path, scene["token"])
    assert not handed_on and answer == call(django_asgi_app, "GET", path, scene["token"])
    assert json.loads(answer[2])["received_bytes"] == 300
    add_member(scene["project"], other := make_user("otto"), "annotator")
    answer, handed_on = hot("GET", path, token_headers(other))
    assert handed_on and answer[0] == 404, "another person's upload is not theirs to see"


def test_a_stale_open_session_does_not_count_against_the_bound(scene):
    for i in range(upload_sessions.MAX_OPEN_SESSIONS):
        UploadSession.objects.create(project=scene["project"], created_by=scene["uploader"], file_name=f"{i}", size_bytes=9)
    UploadSession.objects.update(updated_at=timezone.now() - upload_sessions.OPEN_WINDOW - timedelta(seconds=1))
    (status, _, _), handed_on = hot("POST", sessions_path(scene), scene["token"], open_body())
    assert status == 201 and not handed_on


# ------------------------------------------------------------------------ through the real web server


def test_the_real_web_server_takes_a_photo_hot_and_the_worker_stores_it(scene, celery_worker):
    """Over HTTP on uvicorn's own event loop, as the browser sends a photo: open, one chunk that
    finishes, poll; the cpu worker validates and stores it."""
    import httpx
    from django.db import connection

    from backend.images.models import Image
    from tests.live_server import start_web, stop

    data = noisy_jpeg(8, 640, 480)
    proc, url = start_web(connection.settings_dict["NAME"], log_name="upload-hot-server.log")
    try:
        key = dict(scene["token"])[b"authorization"].decode()
        with httpx.Client(base_url=url, headers={"Authorization": key}, timeout=30) as client:
            opened = client.post(sessions_path(scene), json={"file_name": "desk.jpg", "size_bytes": len(data)})
            assert opened.status_code == 201, opened.text
            sid = opened.json()["id"]
            sent = client.put(f"{sessions_path(scene)}{sid}/?offset=0&finish=1", content=data,
                              headers={"Content-Type": "application/octet-stream"})
            assert sent.status_code == 200 and sent.json()["status"] == "queued", sent.text
            deadline = time.monotonic() + 60
            while (state := client.get(f"{sessions_path(scene)}{sid}/").json())["status"] not in ("done", "failed"):
                assert time.monotonic() < deadline, state
                time.sleep(0.2)
        assert state["status"] == "done", state
        [image_id] = state["result"]["created"]
        image = Image.objects.get(pk=image_id)
        assert image.sha256 == hashlib.sha256(data).hexdigest() and (image.width, image.height) == (640, 480)
    finally:
        stop(proc)
