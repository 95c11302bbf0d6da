"""Chunked, resumable uploads: bytes arrive in chunks at the server's offset, and the cpu worker
validates, dedups, stores and thumbnails them (a real worker in the last test)."""
import hashlib
import io
import os
import time

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from backend.images import upload_sessions
from backend.images.models import Image, UploadSession

from .factories import add_member, image_bytes, make_project, make_user, zip_bytes

pytestmark = pytest.mark.django_db


def noisy_jpeg(seed: int, width: int = 300, height: int = 200) -> bytes:
    """A JPEG that does not compress to almost nothing, so it spans several small chunks."""
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="JPEG", quality=95)
    return out.getvalue()


@pytest.fixture
def owner_project():
    owner = make_user("chunker")
    return owner, make_project(owner)


def base(project) -> str:
    return f"/api/projects/{project.pk}/images/uploads/"


def open_session(client, project, name: str, data: bytes, **extra):
    response = client.post(base(project), {"file_name": name, "size_bytes": len(data), **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def put_chunk(client, project, sid: int, offset: int, chunk: bytes):
    return client.generic("PUT", f"{base(project)}{sid}/?offset={offset}", chunk, content_type="application/octet-stream")


def send_all(client, project, name: str, data: bytes, chunk: int = 4096) -> dict:
    session = open_session(client, project, name, data)
    for offset in range(0, len(data), chunk):
        response = put_chunk(client, project, session["id"], offset, data[offset:offset + chunk])
        assert response.status_code == 200, response.content
    finished = client.post(f"{base(project)}{session['id']}/finish/")
    assert finished.status_code == 202, finished.content
    return finished.json()


def process(client, project, sid: int) -> dict:
    """What the cpu worker does, run here; then read the session back through the API."""
    upload_sessions.process_session(sid)
    return client.get(f"{base(project)}{sid}/").json()


def test_chunks_assemble_into_an_image_with_a_thumbnail(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(1)
    assert len(data) > 3 * 4096
    finished = send_all(client, project, "field/photo.jpg", data)
    assert finished["status"] == "queued" and finished["received_bytes"] == len(data)
    assert not Image.objects.filter(project=project).exists(), "the web request stores nothing itself"
    session = process(client, project, finished["id"])
    assert session["status"] == "done", session
    [image_id] = session["result"]["created"]
    image = Image.objects.get(pk=image_id)
    assert image.original_name == "field/photo.jpg" and image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.thumbnail, "a thumbnail is made at upload"
    assert not upload_sessions.temp_path(UploadSession.objects.get(pk=session["id"])).exists(), "temp file removed"


def test_a_client_resumes_from_the_offset_the_server_holds(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(2)
    session = open_session(client, project, "resume.jpg", data)
    sid = session["id"]
    assert put_chunk(client, project, sid, 0, data[:5000]).status_code == 200
    # The client lost track (its connection dropped): it sends from the wrong place ...
    ahead = put_chunk(client, project, sid, 9000, data[9000:12000])
    assert ahead.status_code == 409
    assert ahead.json()["received_bytes"] == 5000 and ahead.json()["code"] == "offset_mismatch"
    # ... or re-sends a chunk the server already has: both are refused with the offset to resume at.
    again = put_chunk(client, project, sid, 0, data[:5000])
    assert again.status_code == 409 and again.json()["received_bytes"] == 5000
    assert client.get(f"{base(project)}{sid}/").json()["received_bytes"] == 5000
    assert client.post(f"{base(project)}{sid}/finish/").status_code == 400, "cannot finish a partial file"
    assert put_chunk(client, project, sid, 5000, data[5000:]).status_code == 200
    assert client.post(f"{base(project)}{sid}/finish/").status_code == 202
    assert process(client, project, sid)["result"]["created"]
    assert upload_sessions.temp_path(UploadSession.objects.get(pk=sid)).exists() is False


def test_the_last_chunk_can_finish_the_upload_in_the_same_request(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(11)
    sid = open_session(client, project, "one-go.jpg", data)["id"]
    # finish=1 on a chunk that does not end the file is refused before anything is written
    early = client.generic("PUT", f"{base(project)}{sid}/?offset=0&finish=1", data[:5000],
                           content_type="application/octet-stream")
    assert early.status_code == 400 and "last chunk" in early.json()["detail"]
    assert client.get(f"{base(project)}{sid}/").json()["received_bytes"] == 0
    assert put_chunk(client, project, sid, 0, data[:5000]).status_code == 200
    last = client.generic("PUT", f"{base(project)}{sid}/?offset=5000&finish=1", data[5000:],
                          content_type="application/octet-stream")
    assert last.status_code == 200, last.content
    assert last.json()["status"] == "queued" and last.json()["received_bytes"] == len(data)
    # A client that lost that answer and finishes again changes nothing
    assert client.post(f"{base(project)}{sid}/finish/").json()["status"] == "queued"
    session = process(client, project, sid)
    assert session["status"] == "done"
    [image_id] = session["result"]["created"]
    assert Image.objects.get(pk=image_id).sha256 == hashlib.sha256(data).hexdigest()


def test_the_same_set_twice_stores_no_duplicates(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    files = {f"img{i}.jpg": noisy_jpeg(10 + i, 80, 60) for i in range(3)}
    first = [send_all(client, project, name, data)["id"] for name, data in files.items()]
    second = [send_all(client, project, f"again-{name}", data)["id"] for name, data in files.items()]
    for sid in first:
        assert process(client, project, sid)["result"]["created"]
    reports = [process(client, project, sid)["result"] for sid in second]
    assert all(r["created"] == [] and len(r["duplicates"]) == 1 for r in reports)
    assert reports[0]["duplicates"][0]["name"] == "again-img0.jpg"
    assert Image.objects.filter(project=project).count() == 3


def test_bytes_the_project_has_are_a_duplicate_without_being_decoded_again(owner_project, client_for, monkeypatch):
    """The worker hashes first: stored bytes were validated when stored, and decoding is most of
    an upload's cost (a re-sent folder without client hashes decoded every photo again)."""
    from backend.core import uploads

    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(21, 120, 90)
    first = send_all(client, project, "a.jpg", data)["id"]
    existing = process(client, project, first)["result"]["created"][0]
    decoded = []
    real = uploads.validate_image
    monkeypatch.setattr(uploads, "validate_image", lambda *a, **k: decoded.append(1) or real(*a, **k))
    again = send_all(client, project, "copy.jpg", data)["id"]
    assert process(client, project, again)["result"] == {
        "created": [], "duplicates": [{"name": "copy.jpg", "existing_id": existing}], "errors": []}
    assert decoded == [] and Image.objects.filter(project=project).count() == 1
    # New bytes are decoded (once) and stored as before; the file's hash is the stored one.
    other = noisy_jpeg(22, 120, 90)
    created = process(client, project, send_all(client, project, "b.jpg", other)["id"])["result"]["created"]
    assert decoded == [1] and Image.objects.get(pk=created[0]).sha256 == hashlib.sha256(other).hexdigest()


def test_a_turned_photo_sent_again_is_still_a_duplicate(owner_project, client_for):
    """An EXIF-turned photo is stored re-encoded upright, so its file hash is not the stored one:
    it is decoded again and found by the stored bytes' hash."""
    owner, project = owner_project
    client = client_for(owner)
    img = PILImage.fromarray(__import__("numpy").random.default_rng(5).integers(0, 255, (60, 80, 3), dtype="uint8"))
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    first = process(client, project, send_all(client, project, "turned.jpg", data)["id"])["result"]["created"][0]
    stored = Image.objects.get(pk=first)
    assert (stored.width, stored.height) == (60, 80) and stored.sha256 != hashlib.sha256(data).hexdigest()
    again = process(client, project, send_all(client, project, "turned-again.jpg", data)["id"])["result"]
    assert again["created"] == [] and again["duplicates"] == [{"name": "turned-again.jpg", "existing_id": first}]


def test_a_known_hash_is_reported_as_duplicate_without_sending_bytes(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(3, 50, 40)
    sid = send_all(client, project, "a.jpg", data)["id"]
    existing = process(client, project, sid)["result"]["created"][0]
    session = open_session(client, project, "copy.jpg", data, sha256=hashlib.sha256(data).hexdigest())
    assert session["status"] == "done" and session["received_bytes"] == 0
    assert session["result"]["duplicates"] == [{"name": "copy.jpg", "existing_id": existing}]


def test_bytes_that_do_not_match_the_declared_hash_are_refused(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(4, 50, 40)
    session = open_session(client, project, "bad.jpg", data, sha256="0" * 64)
    put_chunk(client, project, session["id"], 0, data)
    client.post(f"{base(project)}{session['id']}/finish/")
    result = process(client, project, session["id"])["result"]
    assert result["created"] == [] and "SHA-256" in result["errors"][0]["error"]


def test_bad_files_and_zips_are_reported_by_name_after_processing(owner_project, client_for):
    owner, project = owner_project
    client = client_for(owner)
    bad = send_all(client, project, "notes.png", b"not an image at all")
    assert process(client, project, bad["id"])["result"]["errors"] == [
        {"name": "notes.png", "error": "The file is not an image in an allowed format (JPEG, PNG, WebP, BMP, TIFF)."}
    ]
    archive = zip_bytes({"a.png": image_bytes(10, 10, (1, 1, 1)), "b.txt": b"hello", "c.png": image_bytes(12, 12, (2, 2, 2))})
    result = process(client, project, send_all(client, project, "set.zip", archive, chunk=200)["id"])["result"]
    assert len(result["created"]) == 2
    assert [e["name"] for e in result["errors"]] == ["set.zip/b.txt"]
    names = sorted(Image.objects.filter(pk__in=result["created"]).values_list("original_name", flat=True))
    assert names == ["set.zip/a.png", "set.zip/c.png"]


def test_many_files_never_hit_the_files_per_request_limit(owner_project, client_for, settings):
    owner, project = owner_project
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    client = client_for(owner)
    sids = [send_all(client, project, f"{i}.png", image_bytes(8, 8, (i, 0, 0)))["id"] for i in range(4)]
    for sid in sids:
        process(client, project, sid)
    assert Image.objects.filter(project=project).count() == 4


def test_limits_and_wrong_requests_have_clear_messages(owner_project, client_for, settings):
    owner, project = owner_project
    client = client_for(owner)
    settings.MAX_UPLOAD_BYTES = 1000
    too_big = client.post(base(project), {"file_name": "huge.zip", "size_bytes": 5000}, format="json")
    assert too_big.status_code == 413 and "huge.zip" in too_big.json()["detail"]
    session = open_session(client, project, "small.png", b"x" * 100)
    past = put_chunk(client, project, session["id"], 0, b"x" * 150)
    assert past.status_code == 400 and "past the declared size" in past.json()["detail"]
    no_offset = client.generic("PUT", f"{base(project)}{session['id']}/", b"x", content_type="application/octet-stream")
    assert no_offset.status_code == 400 and "offset" in no_offset.json()["detail"]
    assert client.delete(f"{base(project)}{session['id']}/").status_code == 204
    assert client.get(f"{base(project)}{session['id']}/").status_code == 404


def test_sessions_are_private_to_their_uploader_and_members(owner_project, client_for):
    owner, project = owner_project
    session = open_session(client_for(owner), project, "mine.png", b"x" * 10)
    colleague, viewer, stranger = make_user("colleague"), make_user("viewer"), make_user("stranger")
    add_member(project, colleague, "annotator")
    add_member(project, viewer, "viewer")
    url = f"{base(project)}{session['id']}/"
    assert client_for(colleague).get(url).status_code == 404
    assert put_chunk(client_for(colleague), project, session["id"], 0, b"y" * 10).status_code == 404
    assert client_for(stranger).get(url).status_code == 404
    assert client_for(viewer).post(base(project), {"file_name": "v.png", "size_bytes": 5}, format="json").status_code == 403
    assert client_for(None).get(url).status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_the_cpu_worker_processes_a_finished_upload(celery_worker, client_for):
    owner = make_user("worker-owner")
    project = make_project(owner)
    client = client_for(owner)
    data = noisy_jpeg(5)
    sid = send_all(client, project, "via-worker.jpg", data, chunk=8000)["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session = client.get(f"{base(project)}{sid}/").json()
        if session["status"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert session["status"] == "done", session
    [image_id] = session["result"]["created"]
    image = Image.objects.get(pk=image_id)
    assert image.thumbnail and image.sha256 == hashlib.sha256(data).hexdigest()
    # Stored as a hard link to the finished upload (no second write); the upload's name is gone.
    with image.file.open("rb") as fh:
        assert fh.read() == data
    assert os.stat(image.file.path).st_nlink == 1
    assert not default_storage.exists(UploadSession.objects.get(pk=sid).stored_name)


@pytest.mark.django_db(transaction=True)
def test_an_upload_sent_to_the_worker_asks_for_no_result(celery_worker, client_for):
    """Regression: a web request runs in a thread of its own, and sending a task whose result was
    kept made Celery build a Redis result backend for that thread first (redis-py parses its
    package metadata each time: ~12 % of an upload request's CPU); the worker then stored a
    result nobody reads. The upload's outcome lives in its session row."""
    import threading

    from backend.config.celery import app
    from backend.core.redis_client import shared

    owner = make_user("no-result")
    project = make_project(owner)
    from celery.signals import before_task_publish

    redis = shared()
    sent = []

    # This task's own result key: other tests' tasks may still store results of theirs meanwhile.
    def record(sender=None, headers=None, **_):
        if sender == "images.process_upload":
            sent.append(headers["id"])

    before_task_publish.connect(record, weak=False)
    seen = {}

    def upload_from_a_fresh_thread():
        seen["session"] = send_all(client_for(owner), project, "fresh.jpg", noisy_jpeg(8), chunk=8000)
        seen["backend_built"] = "backend" in vars(app._local)

    thread = threading.Thread(target=upload_from_a_fresh_thread)
    try:
        thread.start()
        thread.join(60)
    finally:
        before_task_publish.disconnect(record)
    assert seen["backend_built"] is False
    deadline = time.monotonic() + 60
    while UploadSession.objects.get(pk=seen["session"]["id"]).status not in ("done", "failed"):
        assert time.monotonic() < deadline, "the worker did not process the upload"
        time.sleep(0.1)
    assert UploadSession.objects.get(pk=seen["session"]["id"]).status == "done"
    assert sent, "the upload was sent to the worker"
    assert not any(redis.exists(f"celery-task-meta-{task_id}") for task_id in sent), "no result stored for the upload task"


def test_compressed_pixels_that_happen_to_spell_markup_are_not_refused(tmp_path):
    """In megabytes of entropy-coded data, "<sVg" turns up by chance (1 photo in 10 here was
    refused as a polyglot); markup is looked for only where a parser reads text."""
    from backend.core.uploads import _MARKUP, UploadError, validate_image
    from tests.benchmarks.upload_bench import _one_photo

    path = tmp_path / "photo.jpg"
    _one_photo((path, 4, 4000, 3000))
    data = path.read_bytes()
    assert _MARKUP.search(data), "precondition: the scan data contains a markup-like string"
    assert validate_image(data).width == 4000
    with pytest.raises(UploadError, match="markup"):  # the same photo with a payload after its end
        validate_image(data + b"<html><script>alert(1)</script></html>")
    with pytest.raises(UploadError, match="markup"):  # or in a comment segment
        validate_image(data[:2] + b"\xff\xfe\x00\x10<svg onload=x>" + data[2:])


def test_open_uploads_per_person_are_bounded_and_abandoned_ones_are_swept(owner_project, client_for, settings):
    from datetime import timedelta

    from django.utils import timezone

    owner, project = owner_project
    client = client_for(owner)
    settings.MAX_UPLOAD_BYTES = 10_000
    upload_sessions.MAX_OPEN_SESSIONS, saved = 2, upload_sessions.MAX_OPEN_SESSIONS
    try:
        first = open_session(client, project, "a.png", b"x" * 10)
        open_session(client, project, "b.png", b"x" * 10)
        third = client.post(base(project), {"file_name": "c.png", "size_bytes": 10}, format="json")
        assert third.status_code == 400 and "finish or cancel some" in third.json()["detail"]
    finally:
        upload_sessions.MAX_OPEN_SESSIONS = saved
    old = timezone.now() - upload_sessions.STALE_AFTER - timedelta(minutes=1)
    UploadSession.objects.filter(pk=first["id"]).update(updated_at=old)
    path = upload_sessions.temp_path(UploadSession.objects.get(pk=first["id"]))
    assert path.exists()
    assert upload_sessions.sweep_stale_sessions() == 1
    assert not path.exists() and not UploadSession.objects.filter(pk=first["id"]).exists()


def test_a_session_whose_worker_died_is_taken_over_by_a_redelivered_task(owner_project, client_for):
    from datetime import timedelta

    from django.utils import timezone

    owner, project = owner_project
    client = client_for(owner)
    sid = send_all(client, project, "crash.png", image_bytes(9, 9, (3, 3, 3)))["id"]
    UploadSession.objects.filter(pk=sid).update(status="processing")  # a worker took it, then died
    assert upload_sessions.process_session(sid) is None, "a live worker's session is left alone"
    UploadSession.objects.filter(pk=sid).update(updated_at=timezone.now() - upload_sessions.PROCESSING_LEASE - timedelta(seconds=1))
    assert upload_sessions.process_session(sid).status == "done"
    assert Image.objects.filter(project=project, original_name="crash.png").count() == 1


def test_a_retry_after_a_database_outage_takes_back_the_session_its_first_run_left_processing(owner_project, client_for):
    """The task's first run claimed the session, then lost the database: its retry (resume=True)
    processes it at once; anyone else still waits out the lease."""
    owner, project = owner_project
    client = client_for(owner)
    sid = send_all(client, project, "resumed.png", image_bytes(9, 9, (4, 4, 4)))["id"]
    UploadSession.objects.filter(pk=sid).update(status="processing")
    assert upload_sessions.process_session(sid) is None
    assert upload_sessions.process_session(sid, resume=True).status == "done"
    assert Image.objects.filter(project=project, original_name="resumed.png").count() == 1


def test_a_finished_upload_waits_in_media_storage_for_a_worker_on_any_host(owner_project, client_for, settings, tmp_path):
    """Finish moves the bytes from the web host's scratch folder into media storage; the worker
    reads them from there (its own VAR_DIR may be another machine's), then removes them."""
    owner, project = owner_project
    client = client_for(owner)
    data = noisy_jpeg(7)
    finished = send_all(client, project, "far.jpg", data)
    session = UploadSession.objects.get(pk=finished["id"])
    assert session.stored_name.startswith(f"incoming/{project.pk}/")
    assert not upload_sessions.temp_path(session).exists(), "nothing left on the web host's scratch disk"
    with default_storage.open(session.stored_name, "rb") as fh:
        assert fh.read() == data
    settings.VAR_DIR = tmp_path / "another-host"  # the worker's scratch folder is not the web's
    done = process(client, project, session.pk)
    assert done["status"] == "done", done
    assert Image.objects.get(pk=done["result"]["created"][0]).sha256 == hashlib.sha256(data).hexdigest()
    assert not default_storage.exists(session.stored_name)


@pytest.mark.django_db(transaction=True)
def test_a_zip_whose_processing_lost_the_database_half_way_reports_its_own_images_as_created(owner_project, client_for, monkeypatch, settings):
    """The first run stored a.png (each image commits on its own), then lost the database; its
    retry finds a.png stored. It is this upload's own image, reported as created, not as a
    duplicate of itself; a real duplicate inside the zip is still reported as one."""
    from django.db import OperationalError, connection

    from backend.images import services

    from ..db_proxy import cut_own_connection
    from .test_job_recovery import private_queues

    private_queues(settings, "zipoutage")  # this test runs the task itself: no worker may take it first
    owner, project = owner_project
    a = image_bytes(10, 10, (1, 1, 1))
    archive = zip_bytes({"a.png": a, "b.png": image_bytes(11, 11, (2, 2, 2)), "c.png": image_bytes(12, 12, (3, 3, 3)),
                         "copy/a.png": a})
    sid = send_all(client_for(owner), project, "set.zip", archive, chunk=300)["id"]
    real, calls = services.create_with_file, []

    def outage_at_the_second_image(prefix, extension, data, create, **kwargs):
        calls.append(1)
        if len(calls) != 2:
            return real(prefix, extension, data, create, **kwargs)

        def cut_then_create(stored):  # inside the row's transaction, as a restart would hit it
            cut_own_connection()
            return create(stored)
        return real(prefix, extension, data, cut_then_create, **kwargs)

    monkeypatch.setattr(services, "create_with_file", outage_at_the_second_image)
    with pytest.raises(OperationalError):
        upload_sessions.process_session(sid)
    connection.close()
    monkeypatch.setattr(services, "create_with_file", real)
    assert list(Image.objects.filter(project=project).values_list("original_name", flat=True)) == ["set.zip/a.png"]

    result = upload_sessions.process_session(sid, resume=True).result
    by_id = dict(Image.objects.filter(project=project).values_list("pk", "original_name"))
    assert sorted(by_id[pk] for pk in result["created"]) == ["set.zip/a.png", "set.zip/b.png", "set.zip/c.png"]
    [duplicate] = result["duplicates"]
    assert duplicate["name"] == "set.zip/copy/a.png" and by_id[duplicate["existing_id"]] == "set.zip/a.png"
    assert result["errors"] == []


@pytest.mark.django_db(transaction=True)
def test_a_project_deleted_while_its_upload_is_processed_ends_it_quietly_and_leaves_no_file(owner_project, client_for,
                                                                                            monkeypatch, caplog, settings):
    """Black-box round 13: a project deleted while its uploads were processed gave a traceback per
    file ("Save with update_fields did not affect any rows") and left incoming/<project>/<id>.bin."""
    import logging

    from backend.projects.services import delete_project

    settings.QUEUE_CPU = f"nobody-{os.getpid()}-cpu"  # committed here: a live test worker must not take it
    owner, project = owner_project
    finished = send_all(client_for(owner), project, "photo.jpg", noisy_jpeg(3))
    stored = UploadSession.objects.get(pk=finished["id"]).stored_name
    real = upload_sessions._process_file

    def deleted_meanwhile(session, upload_images):
        delete_project(project_id=project.pk, version=project.version)  # another request, as it happens
        return real(session, upload_images)

    monkeypatch.setattr(upload_sessions, "_process_file", deleted_meanwhile)
    with caplog.at_level(logging.INFO, logger="razmetka"):
        assert upload_sessions.process_session(finished["id"]) is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert not default_storage.exists(stored)
    assert not Image.objects.filter(project_id=project.pk).exists()
    folder = f"projects/{project.pk}/images"
    left = default_storage.listdir(folder)[1] if default_storage.exists(folder) else []
    assert left == [], left  # the image stored before its row failed went too


def test_your_open_uploads_can_be_listed_to_cancel_them(owner_project, client_for, settings):
    """A client that lost its uploads' ids (a reloaded tab, a crashed script) could only guess them
    to cancel them, while the cap on open uploads refused new ones (black-box round 18)."""
    owner, project = owner_project
    other = make_user("other-uploader")
    add_member(project, other, "annotator")
    settings.MAX_UPLOAD_BYTES = 10_000
    mine = [open_session(client_for(owner), project, f"{n}.png", b"x" * 10) for n in ("a", "b")]
    open_session(client_for(other), project, "c.png", b"x" * 10)
    listed = client_for(owner).get(base(project))
    assert listed.status_code == 200, listed.content
    assert [s["id"] for s in listed.json()] == [s["id"] for s in mine]
    assert client_for(owner).delete(f"{base(project)}{mine[0]['id']}/").status_code == 204
    assert [s["id"] for s in client_for(owner).get(base(project)).json()] == [mine[1]["id"]]
    assert client_for(owner).get(base(project) + "?page=2").status_code == 400


def test_a_head_request_writes_nothing(owner_project, client_for, settings):
    """HEAD ran the write branch of the upload routes (HEAD is answered by the GET handler, which
    took anything not 'GET' for a POST or PUT): it opened uploads and wrote chunks, past the CSRF
    check that safe methods skip (black-box round 18b)."""
    owner, project = owner_project
    client = client_for(owner)
    settings.MAX_UPLOAD_BYTES = 10_000
    listed = client.generic("HEAD", base(project), b'{"file_name": "a.png", "size_bytes": 10}',
                            content_type="application/json")
    assert listed.status_code == 200, listed.content
    assert not UploadSession.objects.filter(project=project).exists()
    session = open_session(client, project, "b.png", b"x" * 10)
    head = client.generic("HEAD", f"{base(project)}{session['id']}/?offset=0", b"x" * 10,
                          content_type="application/octet-stream")
    assert head.status_code == 400, head.content  # no parameters on a read
    head = client.generic("HEAD", f"{base(project)}{session['id']}/", b"x" * 10, content_type="application/octet-stream")
    assert head.status_code == 200
    assert UploadSession.objects.get(pk=session["id"]).received_bytes == 0
