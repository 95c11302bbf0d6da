"""One user's live sockets are bounded across processes, and a closed socket leaves its groups:
one viewer held 6,000 sockets; when they closed together thousands of discards failed and every
later event of the project went to each dead channel for a day."""
import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.conf import settings

from backend.core import redis_client
from backend.core.events import project_group
from backend.realtime import socket_quota

from .test_realtime import connect, world

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def _group_size(project_id: int) -> int:
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    return redis_client.shared().zcard(f"{prefix}:group:{project_group(project_id)}")


async def test_a_user_past_the_limit_is_refused_with_4429_until_one_socket_closes(settings):
    settings.LIVE_SOCKETS_PER_USER = 3
    _, member, _, project, _ = await world()
    open_ = []
    for _ in range(3):
        communicator, connected, _ = await connect(project.pk, member)
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
        open_.append(communicator)
    extra, connected, _ = await connect(project.pk, member)
    assert connected  # accepted, then closed with the code the app explains
    output = await extra.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == 4429
    assert await sync_to_async(_group_size)(project.pk) == 3
    await open_.pop().disconnect()
    again, connected, _ = await connect(project.pk, member)
    assert connected and (await again.receive_json_from(timeout=5))["type"] == "hello"
    for communicator in (*open_, again):
        await communicator.disconnect()
    assert await sync_to_async(_group_size)(project.pk) == 0  # every socket left the project's group
    count = await sync_to_async(redis_client.shared().zcard)(socket_quota._key(member.pk))
    assert count == 0
