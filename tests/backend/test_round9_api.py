"""Round 9 (API): an over-long websocket `since` is a bad `since`, zips whose entries share a
name are refused, the open-uploads bound holds under concurrent opens, and JSON string fields
take JSON strings only."""
import io
import json
import threading
import warnings
import zipfile

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import QueryDict

from backend.annotations.models import Annotation
from backend.core.errors import DomainError
from backend.images import upload_sessions
from backend.images.models import UploadSession, UploadStatus
from backend.images.serializers import UploadSessionCreateSerializer
from backend.projects.models import LabelClass, Project
from backend.realtime import backlog

from .exchange.helpers import H, W, build_project, run_import
from .factories import image_bytes, make_project, make_user


# --------------------------------------------------------------------------- F3: websocket since


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_since_of_more_than_4300_digits_gets_resync_not_a_dropped_socket():
    """int() refuses more than 4,300 digits: the ValueError dropped the socket without a close code."""
    from django.db import connections

    from .test_realtime import connect_since, world

    try:
        _, member, _, project, _ = await world()
        current = await sync_to_async(backlog.current)(project.pk)
        communicator, connected, _ = await connect_since(project.pk, member, "1" * 4301)
        assert connected
        assert (await communicator.receive_json_from(timeout=5)) == {"type": "hello", "project": project.pk, "seq": current}
        assert (await communicator.receive_json_from(timeout=5)) == {"type": "resync", "project": project.pk, "seq": current}
        await communicator.disconnect()
    finally:
        await sync_to_async(connections.close_all)()


# --------------------------------------------------------------------------- F4: same-name zip entries


def _zip_with(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name", and writes it
        with zipfile.ZipFile(out, "w") as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return out.getvalue()


def _coco(box: list[float]) -> bytes:
    return json.dumps({
        "images": [{"id": 1, "file_name": "img1.png", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "hammer"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": box}],
    }).encode()


@pytest.mark.django_db
@pytest.mark.parametrize("second", ["annotations/instances.json", "Annotations/INSTANCES.json"])
def test_an_import_zip_with_two_entries_of_one_name_is_refused(admin_user, second):
    """Both were applied (two objects), where an extractor shows one file with one box."""
    project, _, _ = build_project(admin_user)
    upload = _zip_with([("annotations/instances.json", _coco([5, 5, 20, 20])), (second, _coco([30, 20, 20, 20]))])
    job = run_import(project, admin_user, "coco", SimpleUploadedFile("dup.zip", upload, content_type="application/zip"))
    assert job.status == "failed"
    refused = {e["item"] for e in job.errors if "an extractor would keep only one" in e["error"]}
    assert refused == {"dup.zip/annotations/instances.json", f"dup.zip/{second}"}, job.errors
    assert not Annotation.objects.filter(project=project).exists()


@pytest.mark.django_db
def test_image_and_gallery_zips_refuse_entries_of_one_name_and_keep_the_rest(admin_user):
    from backend.gallery import services as gallery_services
    from backend.images.services import upload_images

    project = make_project(admin_user, name="Twins")
    entries = [("a.png", image_bytes(30, 30, (1, 2, 3))), ("A.png", image_bytes(30, 30, (4, 5, 6))),
               ("b.png", image_bytes(30, 30, (7, 8, 9)))]
    report = upload_images(project=project, user=admin_user, files=[SimpleUploadedFile("i.zip", _zip_with(entries))])
    assert [i.original_name for i in report.created] == ["i.zip/b.png"]
    assert {(e["name"], "would keep only one" in e["error"]) for e in report.errors} == {
        ("i.zip/a.png", True), ("i.zip/A.png", True)}

    entries = [(f"hammer/{name}", data) for name, data in entries]
    report = gallery_services.upload_exemplars(project=project, user=admin_user, class_id=None,
                                               files=[SimpleUploadedFile("g.zip", _zip_with(entries))])
    assert len(report.created) == 1
    assert {e["name"] for e in report.errors} == {"g.zip/hammer/a.png", "g.zip/hammer/A.png"}


@pytest.mark.django_db
def test_folders_are_folded_one_by_one(admin_user):
    """Round 10: "d./x.png" and "d/x.png" were both stored (only the whole path's end was folded),
    where Windows makes them one file."""
    from backend.images.services import upload_images

    project = make_project(admin_user, name="Folders")
    entries = [("d./x.png", image_bytes(30, 30, (1, 2, 3))), ("D/x.png", image_bytes(30, 30, (4, 5, 6))),
               ("e/x.png", image_bytes(30, 30, (7, 8, 9)))]
    report = upload_images(project=project, user=admin_user, files=[SimpleUploadedFile("f.zip", _zip_with(entries))])
    assert [i.original_name for i in report.created] == ["f.zip/e/x.png"]
    assert {e["name"] for e in report.errors} == {"f.zip/d./x.png", "f.zip/D/x.png"}


# --------------------------------------------------------------------------- F5: open-uploads bound


def _pause_after(sql_start: str, table: str, pause):
    """An execute wrapper that calls `pause()` after each query of `table` starting with `sql_start`."""
    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith(sql_start) and table in sql:
            pause()
        return result
    return wrapper


@pytest.mark.django_db(transaction=True)
def test_concurrent_opens_never_pass_the_bound(monkeypatch):
    """Each open counted, then inserted: opens at the same moment all counted the same and all
    inserted (33 of 32). Here every open waits after its count until all have counted (or 1 s)."""
    monkeypatch.setattr(upload_sessions, "MAX_OPEN_SESSIONS", 3)
    owner = make_user("opener")
    project = make_project(owner)
    openers = 8
    barrier = threading.Barrier(openers)
    outcomes = []

    def wait_for_the_others():
        try:
            barrier.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass  # the opens are serialized: the others are not counting

    def open_one(i):
        try:
            with connection.execute_wrapper(_pause_after("SELECT COUNT(*)", UploadSession._meta.db_table, wait_for_the_others)):
                upload_sessions.create_session(project=project, user=owner, file_name=f"{i}.png", size_bytes=9)
            outcomes.append("open")
        except DomainError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(openers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert UploadSession.objects.filter(project=project, status=UploadStatus.RECEIVING).count() == 3
    assert sorted(outcomes) == ["open"] * 3 + ["refused"] * 5


@pytest.mark.django_db(transaction=True)
def test_a_hot_open_waits_for_an_open_in_flight_and_keeps_the_bound(monkeypatch):
    """The hot route's INSERT ... WHERE count < bound did not see another open's uncommitted row."""
    from backend.core.async_db import pool

    from .test_api_hot_paths import token_headers
    from .test_upload_hot_routes import hot, open_body

    monkeypatch.setattr(upload_sessions, "MAX_OPEN_SESSIONS", 2)
    owner = make_user("hotopener")
    project = make_project(owner)
    UploadSession.objects.create(project=project, created_by=owner, file_name="0.png", size_bytes=9)
    inserted, release = threading.Event(), threading.Event()

    def hold():  # the view's open, stopped between its insert and its commit
        inserted.set()
        release.wait(timeout=10)

    def view_open():
        try:
            with connection.execute_wrapper(_pause_after("INSERT", UploadSession._meta.db_table, hold)):
                upload_sessions.create_session(project=project, user=owner, file_name="1.png", size_bytes=9)
        finally:
            connection.close()

    answers = []
    in_flight = threading.Thread(target=view_open)
    in_flight.start()
    try:
        assert inserted.wait(timeout=10)
        headers = token_headers(owner, json_body=True)
        path = f"/api/projects/{project.pk}/images/uploads/"
        hot_open = threading.Thread(target=lambda: answers.append(hot("POST", path, headers, open_body("2.png"))))
        hot_open.start()
        hot_open.join(timeout=1)  # with the lock it waits for the open in flight
    finally:
        release.set()
        in_flight.join()
    hot_open.join()
    pool.discard()
    (status, _, body), handed_on = answers[0]
    assert status == 400 and handed_on, body  # the view's "finish or cancel some"
    assert UploadSession.objects.filter(project=project).count() == 2


# --------------------------------------------------------------------------- F6: strings are strings


@pytest.mark.django_db
def test_json_string_fields_refuse_numbers(admin_user, client_for):
    """DRF's CharField stored {"name": 1e308} as a class named "1e+308"."""
    project = make_project(admin_user, name="Strings")
    client = client_for(admin_user)
    base = f"/api/projects/{project.pk}"
    for value in (1e308, 2**64, -1, 0, True):
        for path, body, field in ((f"{base}/classes/", {"name": value}, "name"),
                                  ("/api/projects/", {"name": value}, "name"),
                                  ("/api/projects/", {"name": "ok", "description": value}, "description"),
                                  (f"{base}/images/uploads/", {"file_name": value, "size_bytes": 10}, "file_name")):
            response = client.post(path, body, format="json")
            assert response.status_code == 400, (path, body, response.content)
            assert response.json()[field] == ["Not a valid string."], response.json()
    assert not LabelClass.objects.filter(project=project).exists()
    assert list(Project.objects.values_list("name", flat=True)) == ["Strings"]
    assert not UploadSession.objects.filter(project=project).exists()
    # Strings still are strings, in JSON and in a form (which carries nothing else).
    assert client.post(f"{base}/classes/", {"name": "1e308"}, format="json").status_code == 201
    form = UploadSessionCreateSerializer(data=QueryDict("file_name=0&size_bytes=10"))
    assert form.is_valid(), form.errors
    assert form.validated_data["file_name"] == "0"
