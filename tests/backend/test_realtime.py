"""The project websocket: session auth, Origin check, membership at connect and on change."""
import asyncio

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from backend.config.asgi import application
from backend.core import events
from backend.projects import services as project_services
from backend.projects.models import Membership, Role

from .factories import make_project, make_user

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    yield
    # sync_to_async runs ORM calls on a helper thread; its connection would block the test DB's drop.
    from django.db import connections

    await sync_to_async(connections.close_all)()


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def connect(project_id: int, user=None, origin: str = "http://localhost:8000"):
    headers = [(b"host", b"localhost:8000"), (b"origin", origin.encode())]
    if user is not None:
        cookie = await sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/projects/{project_id}/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@sync_to_async
def world():
    owner, member, outsider = make_user("ws-owner"), make_user("ws-member"), make_user("ws-outsider")
    project = make_project(owner)
    membership = Membership.objects.create(project=project, user=member, role=Role.REVIEWER)
    return owner, member, outsider, project, membership


async def test_member_receives_events_sent_on_commit():
    owner, member, _, project, _ = await world()
    communicator, connected, _ = await connect(project.pk, member)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"

    @sync_to_async
    def progress():
        from django.db import transaction

        with transaction.atomic():
            events.emit(project.pk, "job.progress", job={"id": 1, "processed": 2, "total": 3})

    await progress()
    message = await communicator.receive_json_from(timeout=5)
    assert message == {"type": "job.progress", "project": project.pk, "job": {"id": 1, "processed": 2, "total": 3}}
    await communicator.disconnect()


async def test_foreign_origin_is_refused():
    _, member, _, project, _ = await world()
    communicator, connected, _ = await connect(project.pk, member, origin="https://evil.example")
    assert not connected
    await communicator.disconnect()


async def test_non_member_and_anonymous_are_refused():
    _, _, outsider, project, _ = await world()
    for user in (outsider, None):
        communicator, connected, code = await connect(project.pk, user)
        assert not connected and code == 4403
        await communicator.disconnect()


async def test_removed_member_is_disconnected():
    owner, member, _, project, membership = await world()
    communicator, connected, _ = await connect(project.pk, member)
    assert connected
    await communicator.receive_json_from(timeout=5)
    await sync_to_async(project_services.remove_member)(project=project, membership_id=membership.pk)
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "access.revoked"
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == 4403
    await asyncio.sleep(0)
