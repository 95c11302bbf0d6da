"""A file store that refuses writes (read-only, full): uploads answered Django's HTML "Server Error
(500)" page, a training's error named the server's path and an export's said "Operation not
permitted: '17'" (round 11). Now a JSON 503 that says what happened, and run errors without paths."""
from __future__ import annotations

import errno

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.core.errors import STORAGE_MESSAGE
from backend.exchange.services import public_message
from backend.images.models import Image
from backend.jobs.engine import item_error

from .factories import image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def store_refuses(monkeypatch):
    """Django's file storage as on a read-only or full disk (tests run as root: chmod stops nothing)."""

    def refuse(name, content):
        raise OSError(errno.EROFS, "Read-only file system", f"/srv/razmetka/var/media/{name}")

    monkeypatch.setattr(type(storages["default"]), "_save", lambda self, name, content: refuse(name, content))


def test_an_upload_the_store_refuses_is_a_json_503_and_leaves_nothing(client_for, store_refuses):
    owner = make_user("own")
    project = make_project(owner)
    client = client_for(owner)
    client.raise_request_exception = False
    answer = client.post(f"/api/projects/{project.pk}/images/",
                         {"files": [SimpleUploadedFile("a.png", image_bytes())]}, format="multipart")
    assert answer.status_code == 503, answer.content[:300]
    assert answer.json() == {"detail": STORAGE_MESSAGE, "code": "storage_unavailable"}
    assert answer["Retry-After"]
    assert not Image.objects.filter(project=project).exists()


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC])
def test_run_errors_say_the_store_refused_without_a_path(code):
    exc = PermissionError(code, "Operation not permitted", "/work/x/var/media/models/head-p17-r5.npz")
    for text in (public_message(exc), item_error(exc)):
        assert STORAGE_MESSAGE in text and "/work" not in text and "npz" not in text
